"""What a run runs on: the Trainer, precision and strategy, DDP in sweeps, SLURM, checkpoint files, resume."""
