"""The package's import graph: no cycles, and no stage importing a later one.

The stage order is written once, in docs/architecture.md (the ``stages`` block); this test
reads it from there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "imagezarr"
DOC = Path(__file__).parents[1] / "docs" / "architecture.md"
MAX_LINES = 600


def stages() -> dict[str, int]:
    block = re.search(r"```stages\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block, "docs/architecture.md has no ```stages block"
    order: dict[str, int] = {}
    for line in block.group(1).splitlines():
        number, _, names = line.partition(":")
        for name in names.split(","):
            order[name.strip()] = int(number)
    return order


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every imagezarr module ``path`` imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("imagezarr")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("imagezarr"):
                continue
            # "from . import probe" names a module, "from .roots import X" the package
            subs = {f"{target}.{a.name}" for a in node.names}
            found |= {s for s in subs if _exists(s)} or {target}
    return found - {name}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in SRC.rglob("*.py")}


def stage_of(module: str, order: dict[str, int]) -> int | None:
    parts = module.split(".")[1:]
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in order:
            return order[key]
    return None


def test_every_module_has_a_stage() -> None:
    order = stages()
    missing = sorted(m for m in graph() if m != "imagezarr" and stage_of(m, order) is None)
    assert not missing, f"modules without a stage in docs/architecture.md: {missing}"


def test_no_stage_imports_a_later_one() -> None:
    order = stages()
    bad = []
    for module, targets in graph().items():
        if module == "imagezarr":
            continue
        mine = stage_of(module, order)
        for t in targets:
            if t == "imagezarr":
                bad.append(f"{module} imports the package top")
            elif mine is not None and (theirs := stage_of(t, order)) is not None and theirs > mine:
                bad.append(f"{module} (stage {mine}) imports {t} (stage {theirs})")
    assert not bad, "\n".join(sorted(bad))


def find_cycles(edges: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                cycles.append(" -> ".join([*trail[trail.index(t) :], t]))
            elif t not in state:
                visit(t, [*trail, t])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    return cycles


def test_no_import_cycles() -> None:
    # a package's own __init__ re-exporting its submodules is not a cycle between modules
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph().items()}
    cycles = find_cycles(edges)
    assert not cycles, "\n".join(cycles)


def test_the_checks_would_fail() -> None:
    """The detectors themselves, on made-up input."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    order = stages()
    assert stage_of("imagezarr.roots._local", order) == order["roots"]
    assert stage_of("imagezarr.cli._scan", order) > stage_of("imagezarr.store", order)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: module_name(p))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by job"


def test_docstrings_leave_stage_numbers_to_the_stage_list() -> None:
    """Stage numbers written in docstrings went stale (11 of 20 disagreed with the list in
    docs/architecture.md); that list is the one place they live."""
    stale = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if re.search(r"\bStage \d+\b", p.read_text(encoding="utf-8"))
    ]
    assert stale == []


def test_scan_and_inspect_share_one_set_of_layout_keywords() -> None:
    """``inspect`` takes the layout keywords from one TypedDict, which ``scan`` names too."""
    import inspect as pyinspect

    import imagezarr
    from imagezarr.scanning import LAYOUT_KEYWORDS

    scan_params = set(pyinspect.signature(imagezarr.scan).parameters)
    assert set(LAYOUT_KEYWORDS) <= scan_params
    with pytest.raises(TypeError, match="unknown keyword 'patern'; the layout keywords are"):
        imagezarr.inspect(".", patern="x")
    source = (SRC.parent.parent / "src" / "imagezarr" / "api.py").read_text(encoding="utf-8")
    body = source[source.index("def scan(") : source.index("def open_store(")]
    assert "gather(" not in body  # the scan's steps live in scanning, not in the API
