"""Predict what a short Python program prints: a task whose ground truth comes from running it.

Why running: a hand-written evaluator for the generated programs would be a second Python that
could disagree with CPython, and every disagreement would be a wrong label. So every answer here is
what a real interpreter printed, in a subprocess (``run_program``). Nothing is ever run with
exec/eval in this process; programs from a dataset are never run in-process either, they go
through the same sandbox as generated ones.

The sandbox is for trusted-ish code (ours, or a dataset's), not for hostile code. What it
guarantees depends on what the machine allows, found once per process by trying (``sandbox()``):

- always: a fresh empty working directory, stdin closed, an empty environment, ``python -I -S -B``
  (no site-packages, no user paths, nothing written to __pycache__), a wall-clock timeout that
  kills the process group, and rlimits on memory, CPU time, file size (stdout too: it is a file)
  and core dumps, and on new processes for a non-root user;
- network, strongest first: the program gets its own network namespace, which holds only a
  loopback that is down, so no connection can be made anywhere (root can create one; anyone can
  inside a new user namespace where the kernel allows it); else a prelude replaces ``socket.socket``
  and friends with a function raising PermissionError, which stops accidents but not a program
  that means it (ctypes reaches the syscall directly);
- user: when this process is root, the program runs as ``nobody`` if that user can reach the
  interpreter, else inside a new user namespace, where it keeps root's uid but loses every
  capability: it cannot raise its limits, leave its network namespace or override file modes,
  but it can still write files root owns.

Not done: hiding the filesystem (a program reads what its user may read and writes what its user
owns), or containing a process that a root-run program moves out of the process group.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import pwd
import random
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from legible.tasks._base import Problem, Task, register_task
from legible.tasks._datasets import _json_type, _Line, _rows, _show

if TYPE_CHECKING:
    from legible.tasks._datasets import DataPath

try:
    import resource
except ImportError:  # Windows has no rlimits, so no sandbox: run_program refuses there
    resource = None

__all__ = [
    "ProgramOutput",
    "RunResult",
    "Sandbox",
    "generate_program",
    "load_programs",
    "outputs_match",
    "program_prompt",
    "run_program",
    "sandbox",
]

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000  # from <sched.h>; os.unshare only exists from 3.12
MAX_OUTPUT_BYTES = 1 << 20  # RLIMIT_FSIZE, so also the most stdout and stderr that come back
MAX_ANSWER_CHARS = 24  # a generated program's output: one short token a model can write back


# ---------------------------------------------------------------- the sandbox


@dataclass(frozen=True)
class RunResult:
    """What a program did. ``lines_executed`` counts line events in the program (loop bodies once
    per pass), when asked for."""

    stdout: str
    stderr: str
    returncode: int
    timed_out: bool
    lines_executed: int | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def failure(self) -> str:
        """One line saying why it did not succeed, for error messages."""
        if self.timed_out:
            return "timed out"
        last = self.stderr.strip().splitlines()[-1:] or ["no error message"]
        return f"exited with status {self.returncode}: {last[0]}"


@dataclass(frozen=True)
class Sandbox:
    """How programs are isolated here (see the module docstring): namespaces to unshare (0 for
    none, and then sockets are blocked in Python instead) and the user to run as (None: ours)."""

    unshare_flags: int = 0
    uid: int | None = None
    gid: int | None = None

    def describe(self) -> str:
        if self.unshare_flags & CLONE_NEWNET:
            network = "own network namespace (no interfaces up: no connections at all)"
        else:
            network = "sockets replaced by a function raising PermissionError (a guard, not a wall)"
        if self.uid is not None:
            user = f"runs as uid {self.uid}"
        elif self.unshare_flags & CLONE_NEWUSER:
            user = "own user namespace (no capabilities)"
        else:
            user = f"runs as this process's uid {os.geteuid()}"
        return f"network: {network}; user: {user}"


@functools.cache
def _unshare() -> Callable[[int], int] | None:
    """libc's unshare(2), looked up here in the parent: the child must not load libraries."""
    try:
        return ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):  # not Linux
        return None


@functools.cache
def sandbox() -> Sandbox:
    """The strongest isolation this machine allows, found by running a tiny program under each
    candidate in turn (once per process, about 30 ms each)."""
    nobody = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("nobody")
            nobody = (entry.pw_uid, entry.pw_gid)
        except KeyError:
            pass
    candidates = []
    if nobody:
        candidates.append(Sandbox(CLONE_NEWNET, *nobody))
    if _unshare() is not None:
        candidates += [Sandbox(CLONE_NEWUSER | CLONE_NEWNET), Sandbox(CLONE_NEWNET)]
    if nobody:
        candidates.append(Sandbox(0, *nobody))
    candidates.append(Sandbox())
    for box in candidates:
        try:
            if _run("print(6 * 7)", box, timeout_s=10.0, memory_mb=256, count_lines=False).stdout == "42\n":
                return box
        except (OSError, subprocess.SubprocessError):  # refused: the namespace, the uid, or exec as that uid
            continue
    raise RuntimeError("cannot run a sandboxed Python subprocess on this machine")


def _preexec(box: Sandbox, timeout_s: float, memory_mb: int) -> Callable[[], None]:
    """What the child does between fork and exec. Only system calls, no imports or allocation of
    locks: the parent may have threads, and a lock one of them held at fork would stay held."""
    unshare = _unshare()
    cpu_s = math.ceil(timeout_s) + 1

    def preexec() -> None:
        if box.unshare_flags and (unshare is None or unshare(box.unshare_flags) != 0):
            raise OSError(ctypes.get_errno(), "unshare failed")
        for limit, value in (
            (resource.RLIMIT_AS, memory_mb << 20),  # a memory bomb gets MemoryError, not the machine's RAM
            (resource.RLIMIT_CPU, cpu_s),  # a backstop that holds even if this process dies before its timeout
            (resource.RLIMIT_FSIZE, MAX_OUTPUT_BYTES),  # no filling the disk, nor our memory through stdout
            (resource.RLIMIT_CORE, 0),  # a crash leaves no core file
        ):
            resource.setrlimit(limit, (value, value))
        if box.uid is not None:
            os.setgroups([])
            os.setgid(box.gid)
            os.setuid(box.uid)
        # No fork bombs or stray children. Set after setuid: a user already over the limit at setuid
        # time may not exec at all. Root is exempt, whatever its namespace.
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))

    return preexec


# Run by ``python -c``: compile the program from its file (so tracebacks name program.py and its
# lines), then run it in fresh globals, so none of the prelude's names are visible to it.
_PRELUDE = """
import sys
code = compile(open("program.py", encoding="utf-8").read(), "program.py", "exec")
"""

# Only where there is no network namespace. Replacing the class also breaks modules that subclass
# it (ssl, asyncio): they fail at import, which is the right way to fail.
_BLOCK_SOCKETS = """
import _socket, socket
def _refuse(*args, **kwargs):
    raise PermissionError("network access is disabled in this sandbox")
for _module in (socket, _socket):
    for _name in ("socket", "SocketType", "create_connection", "create_server", "fromfd", "socketpair"):
        if hasattr(_module, _name):
            setattr(_module, _name, _refuse)
"""

_COUNT_LINES = """
lines = 0
def tracer(frame, event, arg):
    global lines
    if frame.f_code.co_filename != "program.py":
        return None
    lines += event == "line"
    return tracer
sys.settrace(tracer)
"""

_RUN = """
try:
    exec(code, {"__name__": "__main__"})
finally:
    sys.settrace(None)
"""


def run_program(source: str, timeout_s: float = 2.0, memory_mb: int = 256, *, count_lines: bool = False) -> RunResult:
    """Run ``source`` in a sandboxed subprocess (see the module docstring for what that means on
    this machine: ``sandbox().describe()``). A program that fails, times out or is killed comes
    back as a RunResult saying so; nothing it does raises here."""
    return _run(source, sandbox(), timeout_s=timeout_s, memory_mb=memory_mb, count_lines=count_lines)


def _run(source: str, box: Sandbox, *, timeout_s: float, memory_mb: int, count_lines: bool) -> RunResult:
    if resource is None:
        raise RuntimeError("running programs needs a POSIX system (rlimits)")
    with (
        tempfile.TemporaryDirectory(prefix="legible-program-", ignore_cleanup_errors=True) as cwd,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as counter,
    ):
        path = os.path.join(cwd, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        if box.uid is not None:  # the program's own directory is the one place it may write
            os.chown(cwd, box.uid, box.gid)
            os.chown(path, box.uid, box.gid)
        prelude = _PRELUDE + ("" if box.unshare_flags & CLONE_NEWNET else _BLOCK_SOCKETS)
        if count_lines:  # the count goes to its own file descriptor, so stdout and stderr stay the program's
            prelude += _COUNT_LINES + _RUN + f"    import os; os.write({counter.fileno()}, str(lines).encode())\n"
        else:
            prelude += _RUN
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", prelude],
            cwd=cwd,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=out,  # files, not pipes: RLIMIT_FSIZE bounds them and no pipe can fill and block
            stderr=err,
            pass_fds=(counter.fileno(),) if count_lines else (),
            start_new_session=True,  # its own process group, so a timeout kills whatever it started
            preexec_fn=_preexec(box, timeout_s, memory_mb),
        )
        try:
            proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # it and everything it started are gone already
                pass
            proc.wait()
        stdout, stderr = (_read(f) for f in (out, err))
        lines = _read(counter) if count_lines else ""  # the program could write there too: trust digits only
        count = int(lines) if lines.isdigit() and len(lines) < 10 else None
        return RunResult(stdout, stderr, proc.returncode, timed_out, count)


def _read(f) -> str:
    f.seek(0)
    return f.read(MAX_OUTPUT_BYTES).decode("utf-8", errors="replace")


# ---------------------------------------------------------------- scoring


def outputs_match(answer: str, expected: str) -> bool:
    """Whether ``answer`` is the printed output ``expected``: exact after stripping whitespace and
    markdown backticks, a trailing sentence "." or "," forgiven, and numbers equal as numbers
    ("7" and "7.0", "-0" and "0")."""
    given, expected = answer.strip().strip("`"), expected.strip()
    if given[-1:] in (".", ",") and expected[-1:] != given[-1:]:
        given = given[:-1]
    if given == expected:
        return True
    if _NUMBER.fullmatch(given) and _NUMBER.fullmatch(expected):
        # Decimal, not float: exact (10**17 + 1 is not 10**17), and "1e999999999" costs nothing.
        return Decimal(given) == Decimal(expected)
    return False


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


# ---------------------------------------------------------------- generating programs

WORDS = ("apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "robot", "candle", "garden", "planet", "silver")


def _arithmetic(rng: random.Random) -> list[str]:
    names = "abcdefgh"
    n_in, n_out = rng.randint(2, 3), rng.randint(3, 5)
    lines = [f"{names[i]} = {rng.randint(2, 20)}" for i in range(n_in)]
    for i in range(n_in, n_in + n_out):
        x, y = rng.sample(names[:i], 2)
        op = rng.choice(["+", "-", "*", "//", "%"])
        # Divide only by constants: a variable divisor could be 0, and chained products would grow.
        rhs = f"{x} {op} {rng.randint(2, 9)}" if op in ("//", "%", "*") else f"{x} {op} {y}"
        lines.append(f"{names[i]} = {rhs}")
    last = names[n_in + n_out - 1]
    lines.append(rng.choice([f"print({last})", f"print({last} - {names[0]})", f"print({last} % {rng.randint(5, 13)})"]))
    return lines


def _loop(rng: random.Random) -> list[str]:
    start, stop, k = rng.randint(0, 3), rng.randint(6, 10), rng.randint(2, 4)
    lines = [f"total = {rng.randint(0, 10)}", "count = 0", f"for i in range({start}, {stop}):"]
    if rng.random() < 0.5:
        lines += [f"    if i % {k} == 0:", f"        total += i * {rng.randint(2, 5)}", "        count += 1"]
        lines += ["    else:", f"        total -= {rng.randint(1, 4)}"]
    else:
        lines += [f"    total = (total * {rng.randint(2, 3)} + i) % {rng.randint(50, 100)}", "    count += i % 2"]
    lines.append(rng.choice(["print(total)", "print(total + count)", "print(total * count)"]))
    return lines


def _while(rng: random.Random) -> list[str]:
    n = rng.randint(1000, 999999)
    if rng.random() < 0.5:
        return [f"n = {n}", "total = 0", "while n > 0:", "    total += n % 10", "    n = n // 10", "print(total)"]
    last = rng.choice(["print(rev)", f"print(rev % {rng.randint(7, 97)})", f"print(rev - {n})"])
    return [f"n = {n}", "rev = 0", "while n > 0:", "    rev = rev * 10 + n % 10", "    n //= 10", last]


def _lists(rng: random.Random) -> list[str]:
    xs = [rng.randint(1, 20) for _ in range(rng.randint(4, 6))]
    ops = [
        f"xs.append({rng.randint(1, 30)})",
        "xs = sorted(xs)",
        f"xs = xs[{rng.randint(0, 1)}:{rng.randint(3, 4)}]",
        "xs.append(max(xs) - min(xs))",
        f"xs = [x * {rng.randint(2, 3)} for x in xs if x % 2 == {rng.randint(0, 1)}]",
        "xs.reverse()",
        f"xs.insert(0, {rng.randint(1, 9)})",
    ]
    lines = [f"xs = {xs}", *rng.sample(ops, rng.randint(3, 5))]
    lines.append(
        rng.choice(["print(sum(xs))", "print(max(xs))", "print(len(xs))", "print(xs[0])", "print(sum(xs[::2]))"])
    )
    return lines


def _strings(rng: random.Random) -> list[str]:
    word, other = rng.sample(WORDS, 2)
    ops = [
        "s = s.upper()",
        f"s = s[{rng.randint(0, 2)}:{rng.randint(3, 5)}]",
        f"s = s + other[:{rng.randint(1, 3)}]",
        "s = s[::-1]",
        f's = s.replace("{rng.choice(word)}", "{rng.choice("xyz")}")',
        f's = "-".join([s, other[{rng.randint(0, 4)}]])',
        "s = s * 2",
    ]
    lines = [f's = "{word}"', f'other = "{other}"', *rng.sample(ops, rng.randint(3, 5))]
    lines.append(rng.choice(["print(s)", "print(s)", "print(len(s))", f'print(s.count("{rng.choice(word)}"))']))
    return lines


def _conditional(rng: random.Random) -> list[str]:
    cmp = rng.choice([">", "<", ">=", "==", "!="])
    lines = [f"x = {rng.randint(1, 30)}", f"y = {rng.randint(1, 30)}", f"if x {cmp} y:", "    z = x - y"]
    if rng.random() < 0.5:
        lines += [f"elif x % {rng.randint(2, 4)} == 0:", f"    z = x // {rng.randint(2, 4)}"]
    lines += ["else:", f"    z = y * {rng.randint(2, 4)} - x"]
    if rng.random() < 0.5:
        lines += ["if z % 2 == 0:", "    z = z // 2"]
    lines.append(rng.choice(["print(z)", 'print("big" if z > 10 else "small")', "print(abs(z))"]))
    return lines


def _function(rng: random.Random) -> list[str]:
    if rng.random() < 0.5:
        lines = ["def f(n):", "    if n % 2 == 0:", "        return n // 2", f"    return n * 3 + {rng.randint(1, 3)}"]
        lines += [f"x = {rng.randint(3, 40)}", *["x = f(x)"] * rng.randint(1, 3), "print(f(x))"]
        return lines
    c, m = rng.randint(1, 9), rng.randint(10, 50)
    lines = ["def g(a, b):", f"    return (a * b - {c}) % {m}", f"r = g({rng.randint(2, 12)}, {rng.randint(2, 12)})"]
    lines += [f"r = g(r, {rng.randint(2, 9)})" for _ in range(rng.randint(1, 3))]
    lines.append(rng.choice(["print(r)", f"print(g(r, r) + {rng.randint(1, 9)})"]))
    return lines


def _dict_count(rng: random.Random) -> list[str]:
    alphabet = rng.sample("abcdefghkmnprstx", rng.randint(2, 4))
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 10)))
    lines = [f's = "{text}"', "counts = {}", "for ch in s:", "    counts[ch] = counts.get(ch, 0) + 1"]
    last = rng.choice(["best", "key", "len", "squares"])
    if last == "best":  # max keeps the first of equal counts, in insertion order: deterministic
        lines += ["best = max(counts, key=counts.get)", "print(best + str(counts[best]))"]
    elif last == "key":
        lines.append(f'print(counts["{rng.choice(text)}"] * {rng.randint(2, 5)})')
    elif last == "len":
        lines += [f'counts["{rng.choice("yz")}"] = 1', "print(len(counts))"]
    else:
        lines.append("print(sum(v * v for v in counts.values()))")
    return lines


TEMPLATES: dict[str, Callable[[random.Random], list[str]]] = {
    "arithmetic": _arithmetic,
    "loop": _loop,
    "while": _while,
    "lists": _lists,
    "strings": _strings,
    "conditional": _conditional,
    "function": _function,
    "dict_count": _dict_count,
}


def generate_program(rng: random.Random, kinds: Sequence[str] | None = None) -> tuple[str, str]:
    """(kind, source) of a short program that ends by printing one value; not yet run."""
    kind = rng.choice(sorted(kinds or TEMPLATES))
    return kind, "\n".join(TEMPLATES[kind](rng)) + "\n"


def program_prompt(source: str) -> str:
    return (
        "What does this Python program print? Work it out step by step, then give the exact output "
        "after 'Answer:'.\n\n```python\n" + source.rstrip("\n") + "\n```"
    )


def _one_token(output: str) -> bool:
    return bool(output) and len(output.split()) == 1


# ---------------------------------------------------------------- datasets


def load_programs(path: DataPath, timeout_s: float = 2.0, memory_mb: int = 256) -> list[Problem]:
    """Problems from a JSONL file of ``{"program": str, "output": optional str}``. Every program is
    run through ``run_program`` (never in this process) and its printed output is the answer; a
    stated ``output`` must agree with it. A program that fails, times out, prints nothing or prints
    more than one token (the answer parser reads one) is a DatasetError naming its line."""
    problems, seen = [], {}
    for lineno, row in _rows(path):
        line = _Line(path, lineno, row)
        source = line.get("program", str)
        stated = row.get("output")
        if stated is not None and (isinstance(stated, bool) or not isinstance(stated, (str, int, float))):
            raise line.error(f"field 'output': expected a string, got {_json_type(stated)}")
        result = run_program(source, timeout_s, memory_mb, count_lines=True)
        printed = result.stdout.strip()
        if not result.ok:
            raise line.error(f"the program {result.failure()}")
        if not printed:
            raise line.error("the program printed nothing")
        if not _one_token(printed):
            raise line.error(f"the program printed more than one word: {_show(printed)}")
        if stated is not None and not outputs_match(str(stated), printed):
            raise line.error(f"field 'output': the program prints {_show(printed)}, not {_show(stated)}")
        meta = {"id": line.ident(seen), "program": source, "line": lineno, "source": line.where}
        problems.append(Problem(program_prompt(source), printed, max(1, result.lines_executed or 1), (), meta))
    return problems


# ---------------------------------------------------------------- the task


@register_task
class ProgramOutput(Task):
    """Read a short program, say what it prints. Problems are generated (``path=None``) or loaded
    from a JSONL file; ``steps`` is the number of lines the program executed.

    Generation draws a program from the templates, runs it, and draws again if it fails, prints
    nothing, prints more than one short token, or runs more than ``max_executed`` lines (too long
    to follow in a CoT). The same seed gives the same problems, provided no generated program
    reaches the timeout, which they do not by construction (a few hundred lines at most)."""

    name = "program_output"

    def __init__(
        self,
        path: DataPath | None = None,
        kinds: Sequence[str] | None = None,
        min_lines: int = 5,
        max_lines: int = 12,
        max_executed: int = 120,
        timeout_s: float = 2.0,
        memory_mb: int = 256,
        max_attempts: int = 50,
    ) -> None:
        unknown = set(kinds or ()) - set(TEMPLATES)
        if unknown:
            raise ValueError(f"unknown program kinds {sorted(unknown)}; choose from {sorted(TEMPLATES)}")
        if not 1 <= min_lines <= max_lines:
            raise ValueError("need 1 <= min_lines <= max_lines")
        self.kinds = tuple(kinds) if kinds else tuple(TEMPLATES)
        self.min_lines, self.max_lines, self.max_executed = min_lines, max_lines, max_executed
        self.timeout_s, self.memory_mb, self.max_attempts = timeout_s, memory_mb, max_attempts
        self.path = path
        self.problems = load_programs(path, timeout_s, memory_mb) if path is not None else None

    def sample(self, rng: random.Random) -> Problem:
        if self.problems is not None:
            return rng.choice(self.problems)
        why = "no attempt"
        for _ in range(self.max_attempts):
            kind, source = generate_program(rng, self.kinds)
            n_lines = source.count("\n")
            if not self.min_lines <= n_lines <= self.max_lines:
                why = f"{n_lines} lines"
                continue
            result = run_program(source, self.timeout_s, self.memory_mb, count_lines=True)
            output = result.stdout.strip()
            if not result.ok:
                why = result.failure()
            elif not _one_token(output) or len(output) > MAX_ANSWER_CHARS:
                why = f"printed {_show(output)}"
            elif (result.lines_executed or 0) > self.max_executed:
                why = f"executed {result.lines_executed} lines"
            else:
                meta = {"program": source, "kind": kind, "lines": n_lines}
                return Problem(program_prompt(source), output, result.lines_executed or n_lines, (), meta)
        raise RuntimeError(f"no usable program in {self.max_attempts} attempts (last: {why})")

    def score(self, problem: Problem, answer: str | None) -> float:
        return float(answer is not None and outputs_match(answer, problem.answer))
