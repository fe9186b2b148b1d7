from legible.monitor.base import KeywordMonitor, Monitor

__all__ = ["KeywordMonitor", "Monitor"]
