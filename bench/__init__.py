"""`autoposter bench`: the old flow against ours, measured side by side in one run.

A shell like `cli`: it drives the posting domain, the server and the workers against the
simulated backend and reports what it measured; nothing below imports it.
"""

from bench._command import bench
from bench._oldflow import OldFlow, OldPost
from bench._report import Report, Table, Target, ratio, render
from bench._runner import SCENARIOS, Plan, plan_for, run

__all__ = [
    "SCENARIOS",
    "OldFlow",
    "OldPost",
    "Plan",
    "Report",
    "Table",
    "Target",
    "bench",
    "plan_for",
    "ratio",
    "render",
    "run",
]
