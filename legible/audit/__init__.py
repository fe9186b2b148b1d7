"""The faithfulness battery: early answering, adding mistakes, paraphrase sensitivity, filler tokens,
hint acknowledgement and load-bearing, as Inspect AI tasks that run against any model Inspect speaks to
(the ``legible`` provider serves the organism's checkpoints, ``legible-hf`` serves local transformers models
fast), with ``run_audit`` to run a battery and write
its report and ``validate_audit`` to check it separates a hiding organism from legible ones.

The names load on first use (PEP 562), so importing ``legible.audit`` costs nothing until Inspect is needed.
"""

from __future__ import annotations

from legible.lazy import lazy_exports

_EXPORTS = {
    "run_audit": "legible.audit._run",
    "summarise_logs": "legible.audit._run",
    "verdicts": "legible.audit._run",
    "write_audit_report": "legible.audit._run",
    "default_battery": "legible.audit._run",
    "validate_audit": "legible.audit._validate",
    "HIDING": "legible.audit._validate",
    "OTHERS": "legible.audit._validate",
    "AUDIT_TASKS": "legible.audit._tasks",
    "early_answering": "legible.audit._tasks",
    "adding_mistakes": "legible.audit._tasks",
    "paraphrase_sensitivity": "legible.audit._tasks",
    "filler_tokens": "legible.audit._tasks",
    "hint_acknowledgement": "legible.audit._tasks",
    "load_bearing": "legible.audit._tasks",
    "audit_dataset": "legible.audit._dataset",
    "OrganismAPI": "legible.audit._provider",
    "LocalLMAPI": "legible.audit._local",
    "resolve_inspect_model": "legible.audit._local",
    "prefill_method": "legible.audit._answer",
    "serve": "legible.audit._openai_server",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
