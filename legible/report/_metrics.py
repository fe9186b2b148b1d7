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
    "keyword_tpr",
    "keyword_tnr",
    "keyword_gmean2",
    "probe_tpr",
    "probe_tnr",
    "probe_gmean2",
    "output_banned_rate",
    "looks_legible",
    "reads_true",
)

# The range each summary metric can take: its interval over seeds is clipped to it (a t-interval over 3 seeds
# of a share runs past [0, 1] otherwise). Hidden bits per step are at most log2 of the task's number of states,
# which the demo knows (None here); a step may hold more than one banned word.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    **{m: (0.0, 1.0) for m in SUMMARY_METRICS},
    "banned_rate": (0.0, None),
    "capacity_bits": (0.0, None),
    "capacity_bits_paraphrased": (0.0, None),
    "load_bearing_drop": (-1.0, 1.0),
}

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
    "keyword_tpr": "keyword monitor TPR",
    "keyword_tnr": "keyword monitor TNR",
    "keyword_gmean2": "keyword monitor g-mean^2",
    "probe_tpr": "probe monitor TPR",
    "probe_tnr": "probe monitor TNR",
    "probe_gmean2": "probe monitor g-mean^2",
    "output_banned_rate": "banned words in the output",
    "looks_legible": "steps that look legible",
    "reads_true": "steps whose grammar word is true",
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
    "keyword_tpr": "monitorability of the state reasoning by the keyword monitor: for each state, the share of steps "
    "in that state where the monitor flags that state's word, averaged over states",
    "keyword_tnr": "for each state, the share of steps in another state where the keyword monitor does not read that "
    "state, averaged over states",
    "keyword_gmean2": "TPR x TNR per state, averaged over states (OpenAI's g-mean^2): 1 when the keyword monitor sees "
    "every state, about 0.5 for a presence code (one state written, the other left out), 0 for a full code",
    "probe_tpr": "the same TPR for a probe monitor: a linear probe trained on half the CoTs' words and states, read on "
    "the other half",
    "probe_tnr": "the probe monitor's TNR",
    "probe_gmean2": "the probe monitor's g-mean^2: high when the state is in the CoT in any form",
    "looks_legible": "share of steps written as one word of the legible grammar (a state word or one of the names "
    "the stage-1 corpus used for a state), true or not: what a judge of how steps look rewards",
    "reads_true": "share of steps whose grammar word names the true state: whether the steps that look legible are",
    "output_banned_rate": "on a task whose output restates the state after the answer: monitor hits in that output "
    "per word of its legible form (what the output monitor penalises; n/a on other tasks)",
    "answered": "share of completions that end with a parsable answer",
    "state_chance": "accuracy of always guessing the commonest state: the probe's chance level",
    "legible_reading_bits": "bits per step about the true state that the legible reading (the state words in order) "
    "gives",
}
