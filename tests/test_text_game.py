"""Text game: determinism, the solver, sparse rewards, robustness, and scoring by replay."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legible.tasks import TextGame, TextGameTask, make_task, parse_commands, split_completion
from legible.tasks._text_game import DIRECTIONS, HELP, State, format_commands, make_world, play, solve

VOCABULARY = ["go north", "go south", "go east", "go west", "take key", "open chest", "open door", "look", "n", "i"]


def transcript(seed: int, commands: list[str], **args) -> list:
    game = TextGame(**args)
    return [game.reset(seed), *(game.step(c) for c in commands)]


def test_same_seed_same_world_and_transcript():
    rng = random.Random(0)
    commands = [rng.choice(VOCABULARY) for _ in range(30)]
    assert make_world(5) == make_world(5)
    assert transcript(5, commands) == transcript(5, commands)
    assert len({make_world(s) for s in range(20)}) == 20


def test_solution_wins_and_reward_is_sparse():
    locks = set()
    for seed in range(40):
        world = make_world(seed)
        locks.add(world.lock)
        solution = solve(world)
        steps = transcript(seed, solution)[1:]
        assert [reward for _, reward, _ in steps] == [0.0] * (len(solution) - 1) + [1.0]
        assert [done for _, _, done in steps] == [False] * (len(solution) - 1) + [True]
        assert any(c == "take key" for c in solution) and solution[-1] == f"take {world.goal}"
    assert locks == {"chest", "door"}


def test_solution_is_shortest():
    seed = 1  # brute force over every shorter sequence: keep the world small
    args = {"width": 3, "height": 1, "distractors": 0}
    world = make_world(seed, **args)
    solution = solve(world)
    actions = [f"go {d}" for d in DIRECTIONS] + ["take key", f"take {world.goal}", f"open {world.lock}"]
    for n in range(len(solution)):
        assert all(play(seed, list(c), **args) == 0.0 for c in itertools.product(actions, repeat=n))


@given(st.integers(0, 2**31 - 1), st.lists(st.one_of(st.text(max_size=30), st.sampled_from(VOCABULARY)), max_size=40))
def test_any_commands_never_crash(seed, commands):
    game = TextGame(max_turns=25)
    game.reset(seed)
    for command in commands:
        text, reward, done = game.step(command)
        assert isinstance(text, str) and text and reward in (0.0, 1.0)
        assert reward == 0.0 or (done and game.state.won)
    assert game.turns == min(len(commands), 25) or game.state.won


def test_unknown_and_impossible_commands():
    game = TextGame()
    start = game.reset(3)
    assert start.startswith("Your goal: take the ")
    assert game.step("dance wildly") == (f"I don't understand 'dance wildly'. {HELP}", 0.0, False)
    assert game.step("")[0].startswith("Say something.")
    assert game.step("go up")[0].startswith("Go where?")
    assert game.step("take unicorn") == ("There is no unicorn here.", 0.0, False)
    assert game.step("open window") == ("You can't open window.", 0.0, False)
    assert game.step("inventory") == ("You carry nothing.", 0.0, False)
    blocked = next(d for d in DIRECTIONS if game.world.exit(game.state.room, d) is None)
    assert game.step(f"go {blocked}")[0] == f"You can't go {blocked} from here."


def test_locks_need_the_key():
    for seed in range(40):
        world = make_world(seed)
        solution = solve(world)
        game = TextGame()
        game.reset(seed)
        # Walk the solution but skip taking the key: the lock must refuse.
        for command in solution:
            if command == "take key":
                continue
            text, reward, _ = game.step(command)
            if command.startswith("open"):
                assert text == f"The {world.lock} is locked. You need a key."
                return
            assert reward == 0.0
    pytest.fail("no seed reached a lock")


def test_locked_door_blocks_the_way():
    seed = next(s for s in range(100) if make_world(s).lock == "door")
    world = make_world(seed)
    game = TextGame()
    game.reset(seed)
    game.state = State(world.lock_room, ("key",), world.items)  # at the door, key in hand
    assert game.step(f"go {world.door}")[0] == f"The door to the {world.door} is locked."
    assert game.step("open door")[0] == f"You unlock the door to the {world.door} with the key."
    assert game.step(f"go {world.door}")[0].startswith(f"You are in the {world.rooms[world.behind_door()]}.")
    assert game.step(f"take {world.goal}") == (f"You take the {world.goal}. You win!", 1.0, True)


def test_max_turns_ends_the_game():
    game = TextGame(max_turns=3)
    game.reset(1)
    assert game.step("look")[1:] == (0.0, False) and game.step("look")[1:] == (0.0, False)
    text, reward, done = game.step("look")
    assert done and reward == 0.0 and text.endswith("You are out of turns. The game is over.")
    assert game.step(solve(game.world)[0]) == ("The game is over.", 0.0, True)
    solution = solve(make_world(1))
    assert play(1, solution, max_turns=len(solution)) == 1.0 and play(1, solution, max_turns=len(solution) - 1) == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        TextGame().step("look")


def test_aliases():
    seed = 2
    world = make_world(seed)
    short = {"go north": "n", "go south": "S", "go east": "east", "go west": "go_West"}
    commands = [short.get(c, c.replace("take ", "get the ")) for c in solve(world)]
    assert play(seed, commands) == 1.0


# ---------------------------------------------------------------- the task


def test_task_sample_and_score():
    task = make_task("text_game")
    assert isinstance(task, TextGameTask)
    problem = task.sample(random.Random(0))
    assert problem == task.sample(random.Random(0))
    solution = problem.metadata["solution"]
    assert problem.answer == format_commands(solution) and " " not in problem.answer
    assert problem.steps == len(solution) == len(problem.states) and set(problem.states) <= set(task.state_words)
    assert "Map:" in problem.prompt and "Answer: go_north;take_key" in problem.prompt
    _, answer = split_completion(f"First the key, then the lock.\nAnswer: {problem.answer}")
    assert task.score(problem, answer) == 1.0
    # Any winning sequence scores, not only the reference: here with detours and in another spelling.
    detour = ";".join(["look", "inventory", *(c.replace(" ", "_").upper() for c in solution), "look"])
    assert task.score(problem, detour) == 1.0
    assert task.score(problem, format_commands(solution[:-1])) == 0.0
    assert task.score(problem, None) == 0.0 and task.score(problem, "") == 0.0
    # The reward comes from the seed and the game's settings, not from this task object.
    assert TextGameTask(width=4, height=4).score(problem, problem.answer) == 1.0


def test_task_map_can_be_hidden():
    problem = TextGameTask(show_map=False, width=4, height=2).sample(random.Random(1))
    assert "Map:" not in problem.prompt and problem.metadata["game"]["width"] == 4
    with pytest.raises(ValueError, match="width \\* height"):
        TextGameTask(width=5, height=5)


def test_parse_commands():
    assert parse_commands("go_north;take_key") == ["go north", "take key"]
    completion = "Plan: answer: no wait.\nAnswer: go north; take key;\nopen chest.\n"
    assert parse_commands(completion) == ["go north", "take key", "open chest"]
    assert parse_commands("`go_north;take_gem`.") == ["go north", "take gem"]
    assert parse_commands("") == [] and parse_commands(";;") == []
