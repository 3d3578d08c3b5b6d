"""The command line: the entry points' wrapper, the overrides check, the console, composing the config."""
