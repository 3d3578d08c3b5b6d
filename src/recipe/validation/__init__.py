"""The one validation layer: a composed config checked before anything is built."""
