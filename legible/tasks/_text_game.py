"""A small deterministic text adventure with a sparse reward: an environment for RL on CoT.

Why a game: the other tasks score one answer, while here the answer is a plan that only pays off
at the end (reward 1.0 when the goal item is taken, 0.0 for everything before), which is the
setting where a policy is most tempted to reason in ways a monitor cannot follow.

A world is a maze over a small grid of rooms (a random spanning tree, so there is one path between
any two rooms), a key in one room, and the goal item either in a locked chest or in a dead-end room
behind a locked door; a few useless items lie about. Everything follows from the seed: the same
seed and the same commands give the same transcript.

``TextGame`` is the interactive environment (``reset``, ``step``). ``TextGameTask`` makes it a
one-shot Task: the prompt shows the map and the start, the answer is the whole command sequence,
and ``score`` replays it in a fresh game, so any winning sequence scores 1, not only the reference
(a shortest one, found by breadth-first search over game states, which also proves the world can
be won).

Answer format: one token, because ``split_completion`` reads one: commands separated by ``;``,
spaces inside a command written as ``_``, e.g. ``go_north;take_key;go_south;open_chest;take_gem``.
``parse_commands`` also reads a whole completion (everything after the last ``Answer:``, commands
split on ``;`` or newlines, spaces allowed) for callers that have one.
"""

from __future__ import annotations

import random
import re
from collections import deque
from dataclasses import dataclass, replace

from legible.tasks._base import Problem, Task, register_task

__all__ = ["TextGame", "TextGameTask", "World", "format_commands", "make_world", "parse_commands", "play", "solve"]

DIRECTIONS = {"north": (0, -1), "south": (0, 1), "east": (1, 0), "west": (-1, 0)}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
ROOM_NAMES = (
    "kitchen", "hall", "library", "cellar", "garden", "attic", "study", "pantry",
    "gallery", "chapel", "armory", "stable", "vault", "tower", "workshop", "courtyard",
)  # fmt: skip
GOALS = ("gem", "crown", "idol", "scroll", "ring", "amulet")
DISTRACTORS = ("lamp", "rope", "map", "apple", "feather", "bone", "coin", "candle")
HELP = "Commands: go north|south|east|west, take <item>, open <thing>, look, inventory."

# Words a player may use for a verb, and the shorthand a direction alone means.
_VERBS = {"go": "go", "walk": "go", "move": "go", "take": "take", "get": "take", "open": "open", "unlock": "open"}
_VERBS |= {"look": "look", "l": "look", "inventory": "inventory", "inv": "inventory", "i": "inventory"}
_SHORT = {"n": "north", "s": "south", "e": "east", "w": "west"}


@dataclass(frozen=True)
class World:
    """The fixed part of a game. Rooms are grid cells, numbered row by row; ``exits[r]`` maps a
    direction to the room it leads to. ``lock_room`` holds the chest, or is the room the locked
    door leads out of (in direction ``door``)."""

    seed: int
    rooms: tuple[str, ...]
    exits: tuple[tuple[tuple[str, int], ...], ...]
    start: int
    key_room: int
    lock: str  # "chest" or "door"
    lock_room: int
    door: str | None
    goal: str
    items: tuple[tuple[str, ...], ...]  # what lies in each room at the start

    def exit(self, room: int, direction: str) -> int | None:
        return dict(self.exits[room]).get(direction)

    def behind_door(self) -> int | None:
        return None if self.door is None else self.exit(self.lock_room, self.door)


@dataclass(frozen=True)
class State:
    """The changing part: hashable, so the solver can search over it."""

    room: int
    inventory: tuple[str, ...]  # sorted, so the same holdings are the same state
    items: tuple[tuple[str, ...], ...]
    unlocked: bool = False
    won: bool = False


def make_world(seed: int, width: int = 3, height: int = 3, distractors: int = 2) -> World:
    """The world for ``seed``. Everything random is drawn from one ``random.Random(seed)`` in a
    fixed order, so the world depends on nothing else."""
    n = width * height
    if not 3 <= n <= len(ROOM_NAMES):
        raise ValueError(f"width * height must be between 3 and {len(ROOM_NAMES)}")
    if not 0 <= distractors <= len(DISTRACTORS):
        raise ValueError(f"distractors must be between 0 and {len(DISTRACTORS)}")
    rng = random.Random(seed)
    names = tuple(rng.sample(ROOM_NAMES, n))
    exits: list[dict[str, int]] = [{} for _ in range(n)]
    # A maze by randomised depth-first search: a spanning tree, so every room is reachable.
    first = rng.randrange(n)
    stack, seen = [first], {first}
    while stack:
        x, y = stack[-1] % width, stack[-1] // width
        free = [
            (d, (y + dy) * width + x + dx)
            for d, (dx, dy) in DIRECTIONS.items()
            if 0 <= x + dx < width and 0 <= y + dy < height and (y + dy) * width + x + dx not in seen
        ]
        if not free:
            stack.pop()
            continue
        d, nxt = rng.choice(free)
        exits[stack[-1]][d], exits[nxt][OPPOSITE[d]] = nxt, stack[-1]
        seen.add(nxt)
        stack.append(nxt)
    start = rng.randrange(n)
    lock = rng.choice(("chest", "door"))
    goal = rng.choice(GOALS)
    items: list[list[str]] = [[] for _ in range(n)]
    if lock == "door":
        # The goal room is a dead end other than the start (a tree has at least two dead ends), so the
        # door on its one exit is the only way in.
        goal_room = rng.choice([r for r in range(n) if len(exits[r]) == 1 and r != start])
        (back,) = exits[goal_room]
        lock_room, door = exits[goal_room][back], OPPOSITE[back]
        items[goal_room].append(goal)
        key_room = rng.choice([r for r in range(n) if r not in (start, goal_room)])
    else:
        lock_room, door = rng.choice([r for r in range(n) if r != start]), None
        key_room = rng.choice([r for r in range(n) if r not in (start, lock_room)])
    items[key_room].append("key")
    for thing in rng.sample(DISTRACTORS, distractors):
        items[rng.randrange(n)].append(thing)
    return World(
        seed=seed,
        rooms=names,
        exits=tuple(tuple(sorted(e.items())) for e in exits),
        start=start,
        key_room=key_room,
        lock=lock,
        lock_room=lock_room,
        door=door,
        goal=goal,
        items=tuple(tuple(sorted(i)) for i in items),
    )


def initial_state(world: World) -> State:
    return State(room=world.start, inventory=(), items=world.items)


# ---------------------------------------------------------------- the rules


def describe(world: World, state: State) -> str:
    """What the player sees in the current room."""
    room = state.room
    text = [f"You are in the {world.rooms[room]}."]
    text.append("Exits: " + ", ".join(d for d in DIRECTIONS if world.exit(room, d) is not None) + ".")
    if world.lock == "chest" and room == world.lock_room:
        text.append("There is an open chest here." if state.unlocked else "There is a locked chest here.")
    if world.lock == "door" and room in (world.lock_room, world.behind_door()):
        side = world.door if room == world.lock_room else OPPOSITE[world.door]
        text.append(f"There is {'an open' if state.unlocked else 'a locked'} door to the {side}.")
    if state.items[room]:
        text.append("You see: " + ", ".join(state.items[room]) + ".")
    return " ".join(text)


def _parse(command: str) -> tuple[str, str]:
    """(verb, object) in normal form: "Go_North" -> ("go", "north"), "n" -> ("go", "north"),
    "take the key" -> ("take", "key"). An unknown verb comes back as it was, for the message."""
    words = command.replace("_", " ").lower().split()
    if words and words[0] in _SHORT:
        words[0] = _SHORT[words[0]]
    if words and words[0] in DIRECTIONS:
        words = ["go", *words]
    if not words:
        return "", ""
    rest = [w for w in words[1:] if w not in ("the", "a", "an", "to")]
    return _VERBS.get(words[0], words[0]), " ".join(rest)


def transition(world: World, state: State, command: str) -> tuple[State, str, float]:
    """(next state, what the player reads, reward) for one command. Pure: the solver calls it too,
    so the reference solution follows exactly the rules the player is scored by."""
    verb, obj = _parse(command)
    room = state.room
    if verb == "go":
        obj = _SHORT.get(obj, obj)
        if obj not in DIRECTIONS:
            return state, "Go where? Say north, south, east or west.", 0.0
        nxt = world.exit(room, obj)
        if nxt is None:
            return state, f"You can't go {obj} from here.", 0.0
        door = {world.lock_room, world.behind_door()}
        if world.lock == "door" and not state.unlocked and {room, nxt} == door:
            return state, f"The door to the {obj} is locked.", 0.0
        moved = replace(state, room=nxt)
        return moved, describe(world, moved), 0.0
    if verb == "take":
        if obj in state.items[room]:
            items = list(state.items)
            items[room] = tuple(i for i in items[room] if i != obj)
            taken = replace(state, inventory=tuple(sorted((*state.inventory, obj))), items=tuple(items))
            if obj == world.goal:
                return replace(taken, won=True), f"You take the {obj}. You win!", 1.0
            return taken, f"You take the {obj}.", 0.0
        if obj in ("chest", "door"):
            return state, f"You can't take the {obj}.", 0.0
        return state, f"There is no {obj or 'such thing'} here.", 0.0
    if verb == "open":
        at_lock = obj == world.lock and room in (world.lock_room, world.behind_door())
        if obj not in ("chest", "door"):
            return state, f"You can't open {obj or 'nothing'}.", 0.0
        if not at_lock:
            return state, f"There is no {obj} here.", 0.0
        if state.unlocked:
            return state, f"The {obj} is already open.", 0.0
        if "key" not in state.inventory:
            return state, f"The {obj} is locked. You need a key.", 0.0
        opened = replace(state, unlocked=True)
        if obj == "door":
            return opened, f"You unlock the door to the {world.door} with the key.", 0.0
        items = list(state.items)
        items[room] = tuple(sorted((*items[room], world.goal)))
        return (
            replace(opened, items=tuple(items)),
            f"You unlock the chest with the key. Inside is the {world.goal}.",
            0.0,
        )
    if verb == "look":
        return state, describe(world, state), 0.0
    if verb == "inventory":
        carried = ", ".join(state.inventory) or "nothing"
        return state, f"You carry {carried}.", 0.0
    if not verb:
        return state, f"Say something. {HELP}", 0.0
    return state, f"I don't understand {command.strip()[:40]!r}. {HELP}", 0.0


# ---------------------------------------------------------------- the environment


class TextGame:
    """The interactive game: ``reset(seed)`` then ``step(command)`` until done. Every command,
    understood or not, uses a turn, so a policy cannot stall for free."""

    def __init__(self, width: int = 3, height: int = 3, distractors: int = 2, max_turns: int = 40) -> None:
        if max_turns < 1:
            raise ValueError("max_turns must be at least 1")
        self.width, self.height, self.distractors, self.max_turns = width, height, distractors, max_turns
        self.world: World | None = None

    def reset(self, seed: int) -> str:
        self.world = make_world(seed, self.width, self.height, self.distractors)
        self.state, self.turns, self.done = initial_state(self.world), 0, False
        return f"Your goal: take the {self.world.goal}. {describe(self.world, self.state)}"

    def step(self, command: str) -> tuple[str, float, bool]:
        """(observation, reward, done). Reward is 1.0 on the turn the goal item is taken, else 0.0."""
        if self.world is None:
            raise RuntimeError("call reset(seed) before step")
        if self.done:
            return "The game is over.", 0.0, True
        self.state, text, reward = transition(self.world, self.state, command)
        self.turns += 1
        self.done = self.state.won or self.turns >= self.max_turns
        if self.done and not self.state.won:
            text += " You are out of turns. The game is over."
        return text, reward, self.done


def play(seed: int, commands: list[str], **game_args: int) -> float:
    """The total reward of ``commands`` in a fresh game; commands after the end are ignored."""
    game = TextGame(**game_args)
    game.reset(seed)
    total = 0.0
    for command in commands:
        _, reward, done = game.step(command)
        total += reward
        if done:
            break
    return total


def solve(world: World) -> list[str] | None:
    """A shortest winning command sequence, by breadth-first search over states; None if the
    world cannot be won. Ties go to the first command in a fixed order, so it is deterministic."""
    things = sorted({"key", world.goal, *(i for room in world.items for i in room)})
    commands = [f"go {d}" for d in DIRECTIONS] + [f"take {t}" for t in things] + [f"open {world.lock}"]
    start = initial_state(world)
    came_from: dict[State, tuple[State, str] | None] = {start: None}
    frontier = deque([start])
    while frontier:
        state = frontier.popleft()
        for command in commands:
            nxt, _, _ = transition(world, state, command)
            if nxt in came_from:
                continue
            came_from[nxt] = (state, command)
            if nxt.won:
                path, at = [], nxt
                while came_from[at] is not None:
                    at, command = came_from[at]
                    path.append(command)
                return path[::-1]
            frontier.append(nxt)
    return None


# ---------------------------------------------------------------- answers


def format_commands(commands: list[str]) -> str:
    """The one-token answer form: "go north", "take key" -> "go_north;take_key"."""
    return ";".join("_".join(c.split()) for c in commands)


_MARKER = re.compile(r"(?<!\w)answer(?!\w)[ \t]*:", re.IGNORECASE)


def parse_commands(text: str) -> list[str]:
    """Commands from an answer token ("go_north;take_key") or from a whole completion (everything
    after its last "Answer:"). Commands split on ";" or newlines; "_" reads as a space; quotes,
    backticks and sentence punctuation around a command are dropped."""
    markers = list(_MARKER.finditer(text))
    tail = text[markers[-1].end() :] if markers else text
    commands = []
    for part in re.split(r"[;\n]", tail):
        command = " ".join(part.replace("_", " ").split()).strip(" .,!`'\"")
        if command:
            commands.append(command)
    return commands


# ---------------------------------------------------------------- the task


@register_task
class TextGameTask(Task):
    """Plan a whole game from its map: the answer is every command in order, as one token (see the
    module docstring). ``steps`` is the length of the shortest solution and ``states`` the room the
    player is in after each of its commands."""

    name = "text_game"
    state_words = ROOM_NAMES

    def __init__(
        self, width: int = 3, height: int = 3, distractors: int = 2, max_turns: int = 40, show_map: bool = True
    ) -> None:
        self.game_args = {"width": width, "height": height, "distractors": distractors, "max_turns": max_turns}
        self.show_map = show_map
        make_world(0, width, height, distractors)  # checks the sizes now rather than at the first sample
        TextGame(**self.game_args)

    def sample(self, rng: random.Random) -> Problem:
        seed = rng.randrange(2**31)
        game = TextGame(**self.game_args)
        start = game.reset(seed)
        world = game.world
        solution = solve(world)
        if solution is None or len(solution) > game.max_turns:  # not by construction; a guard for rule changes
            raise RuntimeError(f"world {seed} cannot be won in {game.max_turns} turns")
        state, rooms = initial_state(world), []
        for command in solution:
            state, _, _ = transition(world, state, command)
            rooms.append(world.rooms[state.room])
        parts = [
            "You are playing a text adventure. " + HELP,
            f"You have at most {game.max_turns} commands.",
        ]
        if self.show_map:
            parts.append(_map(world))
        parts += [
            start,
            "Plan the whole game, then write every command in order after 'Answer:' as one word: commands "
            "separated by ';', with '_' for the spaces inside a command, e.g. Answer: go_north;take_key;open_chest",
        ]
        meta = {
            "seed": seed,
            "game": dict(self.game_args),
            "solution": solution,
            "lock": world.lock,
            "goal": world.goal,
        }
        return Problem("\n\n".join(parts), format_commands(solution), len(solution), tuple(rooms), meta)

    def score(self, problem: Problem, answer: str | None) -> float:
        """Replay the answer's commands in a fresh game with the problem's seed."""
        if not answer:
            return 0.0
        return play(problem.metadata["seed"], parse_commands(answer), **problem.metadata["game"])


def _map(world: World) -> str:
    lines = ["Map:"]
    for room, name in enumerate(world.rooms):
        ways = ", ".join(f"{d} -> {world.rooms[to]}" for d, to in world.exits[room])
        here = world.items[room]
        lines.append(f"- {name}: {ways}." + (f" Here: {', '.join(here)}." if here else ""))
    if world.lock == "chest":
        lines.append(f"The {world.goal} is inside a locked chest in the {world.rooms[world.lock_room]}.")
    else:
        inside = world.rooms[world.behind_door()]
        lines.append(f"The door from the {world.rooms[world.lock_room]} {world.door} to the {inside} is locked.")
    return "\n".join(lines)
