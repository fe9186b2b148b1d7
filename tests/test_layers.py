"""The layers of shared/design.md, checked on every import in the package (those inside functions too):
a module imports only from lower layers or from its own package, and the three layer-3 packages (train,
audit, stego) never import one another. Private modules of another package (``legible.x._y``) are reached
only through that package's ``__init__``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import legible

ROOT = Path(legible.__file__).parent

LAYERS = {
    "tasks": 0, "monitor": 0, "stats": 0, "untrusted": 0, "sync": 0, "progress": 0, "lazy": 0, "registry": 0,
    "policy": 1, "paraphrase": 1, "reward": 1, "report": 1,
    "config": 2,
    "train": 3, "audit": 3, "stego": 3,
    "demo": 5, "ask": 5,
    "cli": 6, "_inspect_entry": 6,
}  # fmt: skip


def _unit(module: str) -> str:
    """The top-level unit of a dotted name under legible: ``legible.train._grpo`` -> ``train``."""
    return module.split(".")[1]


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every legible module ``path`` imports, relative imports resolved."""
    found = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("legible.")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            if base == "legible":
                found += [(node.lineno, f"legible.{a.name}") for a in node.names]
            elif base.startswith("legible."):
                found.append((node.lineno, base))
    return found


MODULES = _modules()


def test_every_unit_has_a_layer():
    units = {_unit(m) for m, _ in MODULES if m != "legible"}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_run_down_the_layers(module, path):
    if module == "legible":
        return
    mine = _unit(module)
    wrong = []
    for line, target in _imports(module, path):
        theirs = _unit(target)
        if theirs == mine:
            continue
        if LAYERS[theirs] > LAYERS[mine]:
            wrong.append(f"{path.name}:{line} imports {target} (layer {LAYERS[theirs]} above {LAYERS[mine]})")
        elif LAYERS[theirs] == LAYERS[mine] == 3:
            wrong.append(f"{path.name}:{line} imports {target} (train, audit and stego stay apart)")
        if any(part.startswith("_") for part in target.split(".")[2:]):
            wrong.append(f"{path.name}:{line} imports {target}, private to legible.{theirs}")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from legible.train._grpo import train_grpo\n    from ..audit import run\n")
    assert _imports("legible.tasks.bad", bad) == [(2, "legible.train._grpo"), (3, "legible.audit")]
