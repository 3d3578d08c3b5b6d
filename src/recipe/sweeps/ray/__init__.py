"""Hyperparameter search on Ray Tune (``hydra/sweeper=ray_tune``): the search space as Tune's, a trial as the Hydra
job of ``src/train.py``, Tune's schedulers (ASHA, PBT, PB2), the local or remote cluster, and the report from Tune's
results. Imported only when that sweeper runs: Ray is the optional ``ray`` extra."""
