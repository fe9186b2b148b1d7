"""Monitors read a CoT and say how much of it they flag: a keyword monitor, a model judge, a linear probe;
and drift metrics, which say how far a CoT has moved from legible English."""

from legible.monitor._base import KeywordMonitor, Monitor
from legible.monitor._drift import (
    drift_metrics,
    english_score,
    english_words,
    hierarchy_level,
    legibility,
    odd_token_rate,
    odd_tokens,
)
from legible.monitor._judge import InspectJudge, JudgeMonitor, JudgeStats, make_monitor
from legible.monitor._monitorability import Monitorability, monitorability
from legible.monitor._probe import ProbeResult, probe_states

__all__ = [
    "InspectJudge",
    "JudgeMonitor",
    "JudgeStats",
    "KeywordMonitor",
    "Monitor",
    "Monitorability",
    "ProbeResult",
    "drift_metrics",
    "english_score",
    "english_words",
    "hierarchy_level",
    "legibility",
    "make_monitor",
    "monitorability",
    "odd_token_rate",
    "odd_tokens",
    "probe_states",
]
