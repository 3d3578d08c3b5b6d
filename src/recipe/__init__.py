"""A Lightning + Hydra training template: optimizers, schedules, models, data and sweeps as config."""
