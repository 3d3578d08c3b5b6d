"""Hydra launchers ``hydra/launcher=slurm`` and ``local``: hydra-submitit-launcher's, made to report."""
