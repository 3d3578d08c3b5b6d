"""A Hydra sweeper running an Optuna study (``hydra/sweeper=optuna``): prunes, resumes, shares storage."""
