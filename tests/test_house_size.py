"""The house stays easy to walk (issue #15): no module of the engine or the bundled plugins is longer than
400 lines and no function longer than 60 lines. A module past the limit becomes a package or is split by
domain; a function past it is cut into well-named steps.

Alembic revisions are generated code and are not counted. The scaffold's templates are Python modules
with ordinary functions, so they are counted like the rest.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60

# Being split in other branches: the integrator removes these entries once those branches land.
EXEMPT_FILES: set[str] = set()
EXEMPT_PREFIXES: tuple[str, ...] = ()
EXEMPT_FUNCTIONS: set[tuple[str, str]] = set()


def _modules() -> list[tuple[str, Path]]:
    found = []
    for top in ("engine", "plugins"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/versions/" in relative:
                continue
            found.append((relative, path))
    return found


def _exempt(relative: str) -> bool:
    return relative in EXEMPT_FILES or relative.startswith(EXEMPT_PREFIXES)


def _function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length in lines) of every function and method of a module."""
    lengths = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                lengths.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return lengths


def test_the_walk_covers_the_engine_and_the_plugins():
    names = {relative for relative, _ in _modules()}
    assert "engine/app.py" in names and "plugins/payments_stripe/provider.py" in names
    assert not any("/migrations/versions/" in name for name in names)


def test_no_module_is_longer_than_400_lines():
    too_long = []
    for relative, path in _modules():
        if _exempt(relative):
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            too_long.append(f"{relative}: {lines} lines (at most {MAX_FILE_LINES}; split it by domain)")
    assert not too_long, "\n".join(too_long)


def test_no_function_is_longer_than_60_lines():
    too_long = []
    for relative, path in _modules():
        if relative.startswith(EXEMPT_PREFIXES):
            continue
        for name, line, length in _function_lengths(path):
            if (relative, name) in EXEMPT_FUNCTIONS or length <= MAX_FUNCTION_LINES:
                continue
            too_long.append(f"{relative}:{line} {name}(): {length} lines (at most {MAX_FUNCTION_LINES}; "
                            "extract well-named steps)")
    assert not too_long, "\n".join(too_long)


def test_the_exemptions_still_name_real_code():
    """An exemption for a module or a function that no longer exists (or is short now) goes."""
    names = dict(_modules())
    for relative in EXEMPT_FILES:
        assert relative in names, f"{relative} is exempt but does not exist: take it off EXEMPT_FILES"
    for relative, function in EXEMPT_FUNCTIONS:
        assert relative in names, f"{relative} is exempt but does not exist: take it off EXEMPT_FUNCTIONS"
        lengths = {name: length for name, _, length in _function_lengths(names[relative])}
        assert function in lengths, f"{relative} has no {function}(): take it off EXEMPT_FUNCTIONS"
