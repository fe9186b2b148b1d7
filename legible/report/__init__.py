"""Reports: matplotlib figures (``plots``) and the Markdown + HTML pages (``render``).

``write_demo_report(demo_dir)`` writes the report of ``legible demo``; ``write_run_report(run_dir)``
the smaller one of a single ``legible train`` run. matplotlib is imported only when a figure is drawn.
The report is a library of documents and plots: it reads run directories and dictionaries, and
imports nothing of training, the audit or the stego measurement.
"""

from legible.report._metrics import METRIC_DEFINITIONS, METRIC_LABELS, SUMMARY_METRICS
from legible.report.render import write_demo_report, write_run_report

__all__ = ["METRIC_DEFINITIONS", "METRIC_LABELS", "SUMMARY_METRICS", "write_demo_report", "write_run_report"]
