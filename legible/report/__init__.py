"""Reports: matplotlib figures (``plots``) and the Markdown + HTML pages (``render``).

``write_demo_report(demo_dir)`` writes the report of ``legible demo``; ``write_run_report(run_dir)``
the smaller one of a single ``legible train`` run. matplotlib is imported only when a figure is drawn.
"""

from legible.report.render import METRIC_DEFINITIONS, write_demo_report, write_run_report

__all__ = ["METRIC_DEFINITIONS", "write_demo_report", "write_run_report"]
