"""Run configuration: defaults, presets, and one-line errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from legible.config import CONDITIONS, ConfigError, RunConfig, load_config, save_config


def write(tmp_path: Path, text: str, name: str = "myrun.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_validate():
    cfg = RunConfig()
    assert cfg.condition.name == "monitor"
    assert cfg.paraphraser == "legible_only"
    assert cfg.task.build().max_steps == cfg.task.max_steps


def test_empty_mapping_gives_defaults_and_empty_file_is_an_error(tmp_path):
    assert load_config(write(tmp_path, "{}\n")) == RunConfig()
    with pytest.raises(ConfigError, match="myrun.yaml: empty config"):
        load_config(write(tmp_path, ""))


def test_save_and_load_round_trip(tmp_path):
    cfg = RunConfig(seed=7, condition="monitor+face", paraphraser="swap_neutral+legible_only")
    path = tmp_path / "saved.yaml"
    save_config(cfg, path)
    assert load_config(path) == cfg


@pytest.mark.parametrize("name", sorted(CONDITIONS))
def test_condition_presets_by_name(tmp_path, name):
    # the output monitor reads the output of the task whose output restates the state
    task = "task: {name: coin_flip_explained}\n" if name.startswith("output-monitor") else ""
    cfg = load_config(write(tmp_path, f"condition: {name}\n{task}"))
    assert cfg.condition == CONDITIONS[name]
    assert cfg.condition.name == name


def test_condition_presets_have_the_documented_terms():
    assert CONDITIONS["outcome"].rewards == {"outcome": 1.0}
    assert set(CONDITIONS["monitor"].rewards) == {"outcome", "monitor"}
    assert CONDITIONS["monitor+paraphrase"].paraphrase_in_loop and not CONDITIONS["monitor+paraphrase"].face
    assert CONDITIONS["monitor+face"].paraphrase_in_loop and CONDITIONS["monitor+face"].face
    assert "sensitivity" in CONDITIONS["monitor+sensitivity"].rewards
    assert not CONDITIONS["monitor"].paraphrase_in_loop


def test_explicit_condition_and_nested_values(tmp_path):
    text = (
        "seed: 3\n"
        "task: {name: running_sum, modulus: 7, min_steps: 2, max_steps: 6}\n"
        "rl: {lr: 0.001, group_size: 8}\n"
        "condition:\n  name: custom\n  rewards: {outcome: 1.0, length: 0.05}\n"
        "paraphraser: swap_neutral+legible_only\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.seed == 3 and cfg.task.modulus == 7 and cfg.rl.lr == 0.001 and cfg.rl.group_size == 8
    assert cfg.condition.rewards == {"outcome": 1.0, "length": 0.05}
    assert cfg.task.build().modulus == 7


def test_overrides(tmp_path):
    cfg = load_config(write(tmp_path, "seed: 1\n"), overrides={"seed": 9, "condition": "outcome"})
    assert cfg.seed == 9 and cfg.condition.name == "outcome"


# ---------------------------------------------------------------- errors

BAD = {
    "unknown field": ("seed: 1\nbogus_field: 3\n", "bogus_field"),
    "unknown nested field": ("task:\n  name: coin_flip\n  extra_thing: 1\n", "extra_thing"),
    "wrong type": ("rl:\n  lr: fast\n", "lr"),
    "wrong type top": ("seed: [1, 2]\n", "seed"),
    "out of range": ("rl:\n  group_size: 1\n", "group_size"),
    "out of range probability": ("pretrain:\n  paraphrase_prob: 1.5\n", "paraphrase_prob"),
    "unknown task": ("task:\n  name: chess\n", "name"),
    "unknown condition": ("condition: nosuch_condition\n", "condition"),
    "unknown reward term": ("condition:\n  name: x\n  rewards: {nosuch_term: 1.0}\n", "nosuch_term"),
    "unknown paraphraser": ("paraphraser: nosuch_para\n", "paraphraser"),
    "unknown composed paraphraser": ("paraphraser: swap_neutral+nosuch_para\n", "paraphraser"),
    "steps out of order": ("task:\n  min_steps: 10\n  max_steps: 5\n", "min_steps"),
}


def check_one_line(err: ConfigError, *needles: str) -> None:
    msg = str(err)
    assert "\n" not in msg.strip(), msg
    assert msg == msg.strip()
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_raises_one_line_error_naming_file_and_field(tmp_path, case):
    text, field = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    check_one_line(info.value, "myrun.yaml", field)


def test_unknown_condition_and_paraphraser_name_the_bad_value(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "condition: nosuch_condition\n"))
    assert "nosuch_condition" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "paraphraser: legible_only+nosuch_para\n"))
    assert "nosuch_para" in str(info.value)


@pytest.mark.parametrize(
    "text,line",
    [
        ("seed: 1\nfoo: bar: baz\n", 2),
        ("seed: 1\nrl:\n\tsteps: 3\n", 3),
        ("seed: 1\n\nrl: {steps: 3\n", 4),
    ],
)
def test_yaml_syntax_error_names_file_and_line(tmp_path, text, line):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    check_one_line(info.value, "myrun.yaml", f"line {line}")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "does_not_exist.yaml")
    check_one_line(info.value, "does_not_exist.yaml")


def test_non_mapping_config(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "- 1\n- 2\n"))
    check_one_line(info.value, "myrun.yaml")


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_a_face_that_reads_the_cot_itself_needs_the_organism(tmp_path):
    text = "condition:\n  name: x\n  face: true\n"
    assert load_config(write(tmp_path, text)).condition.face  # Mind & Face on the organism
    text = "backend: trl\nmodel: m\ntask: {name: gsm8k}\n" + text
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    check_one_line(info.value, "myrun.yaml", "condition", "face")
