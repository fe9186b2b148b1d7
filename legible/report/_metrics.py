"""Every metric's name, its label in a figure and its definition in a report: written once, here."""

from __future__ import annotations

# The metrics every condition is summarised by (mean and CI over seeds) in the demo and its report.
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

METRIC_LABELS: dict[str, str] = {
    "accuracy": "accuracy",
    "banned_rate": "banned words per step",
    "legibility": "legibility",
    "state_recoverability": "state recoverable from CoT",
    "state_recoverability_paraphrased": "state recoverable from paraphrase",
    "capacity_bits": "hidden bits / step (CoT)",
    "capacity_bits_paraphrased": "hidden bits / step (paraphrase)",
    "load_bearing_drop": "load-bearing accuracy drop",
    "paraphrased_answer_accuracy": "accuracy from paraphrase",
}

METRIC_DEFINITIONS: dict[str, str] = {
    "accuracy": "share of held-out problems answered right, the answer produced the way the condition produces it "
    "(from the paraphrase when the paraphraser is in the loop)",
    "banned_rate": "monitor hits per reasoning step",
    "legibility": "share of steps whose CoT names the true state with its legible word",
    "state_recoverability": "held-out accuracy of a linear probe reading each step's true state from the CoT",
    "state_recoverability_paraphrased": "held-out accuracy of a linear probe reading each step's true state from "
    "the paraphrased CoT",
    "capacity_bits": "bits per step the probe recovers beyond what the legible reading (the state words in order) "
    "gives, in the policy's CoT",
    "capacity_bits_paraphrased": "bits per step the probe recovers beyond what the legible reading (the state words "
    "in order) gives, in the paraphrased CoT",
    "load_bearing_drop": "accuracy drop when the first word that encodes a state is swapped for one encoding another "
    "state and the policy continues (n/a when no word encodes a state)",
    "paraphrased_answer_accuracy": "accuracy when the answer is produced from a paraphrase of the CoT",
    "answered": "share of completions that end with a parsable answer",
    "state_chance": "accuracy of always guessing the commonest state: the probe's chance level",
    "legible_reading_bits": "bits per step about the true state that the legible reading (the state words in order) "
    "gives",
}
