"""What Inspect AI loads through the ``inspect_ai`` entry point: the ``legible`` model provider
and the audit tasks, so ``inspect eval legible/<task> --model legible/<run-dir>`` works."""

from legible.audit import (  # noqa: F401  (registers the tasks)
    LocalLMAPI,  # noqa: F401  (registers the "legible-hf" provider: local transformers models, fast)
    OrganismAPI,  # noqa: F401  (registers the "legible" provider)
    adding_mistakes,
    early_answering,
    filler_tokens,
    hint_acknowledgement,
    load_bearing,
    paraphrase_sensitivity,
)
