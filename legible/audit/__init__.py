"""Measurements of what a CoT says, hides and relies on."""

# The metrics every condition is summarised by (mean and CI over seeds) in the demo and report.
SUMMARY_METRICS = (
    "accuracy",
    "banned_rate",
    "legibility",
    "state_recoverability",
    "state_recoverability_paraphrased",
    "capacity_bits",
    "capacity_bits_paraphrased",
    "load_bearing_drop",
    "paraphrased_answer_accuracy",
)
