"""Hydra launchers ``hydra/launcher=slurm`` and ``submitit_local``: hydra-submitit-launcher's, made to report."""
