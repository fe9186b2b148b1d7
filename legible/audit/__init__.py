"""The faithfulness battery: early answering, adding mistakes, paraphrase sensitivity, filler tokens,
hint acknowledgement and load-bearing, as Inspect AI tasks that run against any model Inspect speaks to
(the ``legible`` provider serves the organism's checkpoints), with ``run_audit`` to run a battery and write
its report and ``validate_audit`` to check it separates a hiding organism from legible ones.

The names load on first use (PEP 562), so importing ``legible.audit`` costs nothing until Inspect is needed.
"""

from __future__ import annotations

from legible.lazy import lazy_exports

_EXPORTS = {
    "run_audit": "legible.audit.run",
    "summarise_logs": "legible.audit.run",
    "verdicts": "legible.audit.run",
    "write_audit_report": "legible.audit.run",
    "default_battery": "legible.audit.run",
    "validate_audit": "legible.audit.validate",
    "AUDIT_TASKS": "legible.audit.tasks",
    "early_answering": "legible.audit.tasks",
    "adding_mistakes": "legible.audit.tasks",
    "paraphrase_sensitivity": "legible.audit.tasks",
    "filler_tokens": "legible.audit.tasks",
    "hint_acknowledgement": "legible.audit.tasks",
    "load_bearing": "legible.audit.tasks",
    "audit_dataset": "legible.audit.dataset",
    "OrganismAPI": "legible.audit.provider",
    "serve": "legible.audit.openai_server",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
