"""A Hydra sweeper running a study (``hydra/sweeper=study``): one Optuna search per arm of a question, then seeds."""
