"""The run report: curves recorded during training, a verdict on them, and the files a user reads."""

from recipe.report.callback import RunReport
from recipe.report.verdict import Thresholds, Verdict, diagnose

__all__ = ["RunReport", "Thresholds", "Verdict", "diagnose"]
