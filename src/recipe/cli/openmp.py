"""OpenMP's wait policy, set before torch loads (import this module first in an entry script).

libgomp, torch's OpenMP runtime on Linux, reads ``OMP_WAIT_POLICY`` once, when torch is imported. Its default
keeps a thread that waits for work spinning for a while: two runs sharing the cores then spin against each other
(``benchmarks/shared_cores.py`` measured 4.6x the time of one run alone, for two digits runs on 2 cores).
``PASSIVE`` puts waiting threads to sleep; an ``OMP_WAIT_POLICY`` already in the environment is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
