"""Reports: a small document model rendered as Markdown and self-contained HTML, the matplotlib
figures, and the two reports built from them.

``write_demo_report(demo_dir)`` writes the report of ``legible demo``; ``write_run_report(run_dir)``
the smaller one of a single ``legible train`` run. The audit and the stego measurement build their
own pages from the same pieces (``Heading``, ``Para``, ``Table``, ... and ``write_pages``) and plots.
matplotlib is imported only when a figure is drawn.

The report is a library of documents and plots: it reads run directories and dictionaries, and
imports nothing of training, the audit or the stego measurement.

Modules, one job each: ``_document`` (the document model and its two renderers), ``_plots`` (the
figures), ``_metrics`` (metric names, labels and definitions), ``_sections`` (pieces both reports
share: reading run files, number formats, example and learned-code tables), ``_demo_report`` and
``_run_report`` (the two reports).
"""

from legible.report._demo_report import write_demo_report
from legible.report._document import (
    Block,
    Code,
    Heading,
    Image,
    Items,
    Para,
    Pre,
    Styled,
    Table,
    md_code,
    write_pages,
)
from legible.report._metrics import METRIC_DEFINITIONS, METRIC_LABELS, METRIC_RANGES, SUMMARY_METRICS
from legible.report._plots import (
    plot_accuracy_by_n,
    plot_answer_curves,
    plot_capacity_heatmap,
    plot_code_heatmap,
    plot_metric_bars,
    plot_score_histograms,
    plot_summary_bars,
    plot_training_curves,
)
from legible.report._run_report import write_run_report

__all__ = [
    "METRIC_DEFINITIONS",
    "METRIC_LABELS",
    "METRIC_RANGES",
    "SUMMARY_METRICS",
    "Block",
    "Code",
    "Heading",
    "Image",
    "Items",
    "Para",
    "Pre",
    "Styled",
    "Table",
    "md_code",
    "plot_accuracy_by_n",
    "plot_answer_curves",
    "plot_capacity_heatmap",
    "plot_code_heatmap",
    "plot_metric_bars",
    "plot_score_histograms",
    "plot_summary_bars",
    "plot_training_curves",
    "write_demo_report",
    "write_pages",
    "write_run_report",
]
