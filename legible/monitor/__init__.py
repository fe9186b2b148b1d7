"""Monitors read a CoT and say how much of it they flag: a keyword monitor, a model judge, a linear probe;
and drift metrics, which say how far a CoT has moved from legible English."""

from legible.monitor._judge import InspectJudge, JudgeMonitor, JudgeStats, make_monitor
from legible.monitor._probe import ProbeResult, probe_states
from legible.monitor.base import KeywordMonitor, Monitor

__all__ = [
    "InspectJudge",
    "JudgeMonitor",
    "JudgeStats",
    "KeywordMonitor",
    "Monitor",
    "ProbeResult",
    "make_monitor",
    "probe_states",
]
