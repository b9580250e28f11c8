"""docs/plugins.md, "Every hook", against engine/hookspecs.py (datasette's guard tests, made stricter).

Every hookspec has exactly one section headed with its exact signature; each section has the seven
bullets (**Kind:**, **When:**, **Arguments:**, **Returns:**, **Delivery:**, **On raise:**, **Example:**) as
its top-level bullets, in that order; its example is a python block that compiles, names nothing it does
not define or import (ruff's F821), and defines a module-level ``@hookimpl`` function with the hook's name
and exactly the heading's parameters. The stage hook sections follow "The six stages". The checker is run
on small bad samples too, so a missing bullet cannot slip through a checker that checks nothing.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from engine import hookspecs
from engine.plugin_api import stage_hookspecs

ROOT = Path(__file__).resolve().parent.parent
MANUAL = ROOT / "docs" / "plugins.md"
BULLETS = ("Kind", "When", "Arguments", "Returns", "Delivery", "On raise", "Example")
BULLET = re.compile(r"^- \*\*(?P<label>[A-Z][a-z ]*?):?\*\*")
SIGNATURE = re.compile(r"^(?P<name>\w+)\((?P<params>[\w, ]*)\)$")


def specs() -> dict[str, tuple[str, ...]]:
    return {name: tuple(inspect.signature(spec).parameters) for name, spec in vars(hookspecs).items()
            if getattr(spec, "hookshop_spec", None) is not None}


def signature(name: str, params: tuple[str, ...]) -> str:
    return f"{name}({', '.join(params)})"


def sections(markdown: str) -> list[tuple[str, list[str]]]:
    """``(heading, body lines)`` of every ``##``/``###`` heading outside code blocks (``# comment`` lines
    inside a block are not headings)."""
    found: list[tuple[str, list[str]]] = []
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith(("## ", "### ")):
            found.append((line.split(" ", 1)[1].strip(), []))
            continue
        if found:
            found[-1][1].append(line)
    return found


def hook_sections(markdown: str) -> list[tuple[str, list[str]]]:
    """The sections whose heading is a signature, under "## Every hook"."""
    start = markdown.index("\n## Every hook\n")
    end = markdown.index("\n## ", start + 1)
    return [(heading, body) for heading, body in sections(markdown[start:end]) if SIGNATURE.match(heading)]


def bullets(body: list[str]) -> list[tuple[str, int]]:
    """The top-level bullets outside code blocks: (label, line index)."""
    found, fenced = [], False
    for index, line in enumerate(body):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := BULLET.match(line)):
            found.append((match["label"], index))
    return found


def example(body: list[str], after: int) -> str | None:
    """The first ```python block after line ``after``."""
    lines = iter(body[after + 1:])
    for line in lines:
        if line.strip() == "```python":
            block = []
            for inner in lines:
                if inner.strip() == "```":
                    return "\n".join(block) + "\n"
                block.append(inner)
            return None
        if BULLET.match(line) or line.startswith("#"):
            return None
    return None


def _is_hookimpl(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Name) and target.id == "hookimpl") or (
        isinstance(target, ast.Attribute) and target.attr == "hookimpl")


def section_problems(heading: str, body: list[str], stage: bool) -> list[str]:
    """What is wrong with one hook's section (``[]``: nothing)."""
    match = SIGNATURE.match(heading)
    if match is None:
        return [f"{heading}: the heading is not a signature"]
    name = match["name"]
    params = tuple(p.strip() for p in match["params"].split(",") if p.strip())
    found = bullets(body)
    labels = tuple(label for label, _ in found)
    if labels != BULLETS:
        return [f"{heading}: the bullets are {list(labels)}, not {list(BULLETS)}"]
    ends = [index for _, index in found[1:]] + [len(body)]
    text = {label: " ".join(line.strip() for line in body[index:end])
            for (label, index), end in zip(found, ends, strict=True)}
    problems = []
    kind = "stage hook" if stage else "contract hook"
    if kind not in text["Kind"]:
        problems.append(f"{heading}: **Kind:** does not say {kind!r}")
    if "firstresult" not in text["Kind"]:
        problems.append(f"{heading}: **Kind:** does not say whether it is firstresult")
    if stage:
        for words in ("after commit", "at least once", 'event["id"]'):
            if words not in text["Delivery"]:
                problems.append(f"{heading}: **Delivery:** does not say {words}")
    source = example(body, found[-1][1])
    if source is None:
        return [*problems, f"{heading}: no ```python block after **Example:**"]
    try:
        tree = ast.parse(source)
        compile(tree, heading, "exec")
    except SyntaxError as exc:
        return [*problems, f"{heading}: the example does not compile: {exc}"]
    imports_hookimpl = any(isinstance(node, ast.ImportFrom) and node.module in ("engine", "engine.plugin_api")
                           and any(alias.name == "hookimpl" for alias in node.names) for node in tree.body)
    if not imports_hookimpl:
        problems.append(f"{heading}: the example does not import hookimpl from engine.plugin_api")
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name
                 and any(_is_hookimpl(d) for d in node.decorator_list)]
    if len(functions) != 1:
        return [*problems, f"{heading}: the example defines no (or more than one) @hookimpl def {name}"]
    args = functions[0].args
    got = tuple(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))
    if got != params or args.vararg or args.kwarg:
        problems.append(f"{heading}: the example's {name} takes {got}, not {params}")
    return problems


def manual_problems(markdown: str) -> list[str]:
    """Every hookspec has exactly one well-formed section; no section names a hook that does not exist;
    the stage hook sections follow the hooks column of "The six stages"."""
    declared = specs()
    stage_names = list(stage_hookspecs())
    found = hook_sections(markdown)
    problems = []
    headings = [heading for heading, _ in found]
    for name, params in declared.items():
        count = headings.count(signature(name, params))
        if count != 1:
            problems.append(f"{signature(name, params)}: {count} sections headed with its signature")
    for heading, body in found:
        name = SIGNATURE.match(heading)["name"]  # type: ignore[index]
        if name not in declared:
            problems.append(f"{heading}: no such hookspec")
            continue
        problems += section_problems(heading, body, stage=name in stage_names)
    stages = dict(sections(markdown)).get("The six stages", [])
    mentioned: list[str] = []
    for row in (line for line in stages if line.startswith("| ")):
        for hook in re.findall(r"`(\w+)`", row.rstrip(" |").rsplit("|", 1)[-1]):
            if hook in stage_names and hook not in mentioned:
                mentioned.append(hook)
    if sorted(mentioned) != sorted(stage_names):
        problems.append(f"The six stages' hooks column names {mentioned}, not every stage hook {stage_names}")
    in_sections = [SIGNATURE.match(h)["name"] for h in headings if SIGNATURE.match(h)["name"] in stage_names]  # type: ignore[index]
    if in_sections != mentioned:
        problems.append(f"the stage hook sections are in the order {in_sections}, "
                        f"not the six stages' {mentioned}")
    return problems


def example_module(heading: str) -> types.ModuleType:
    """The example of the section headed ``heading``, run as a module (a plugin a test can register)."""
    [body] = [body for found, body in hook_sections(MANUAL.read_text()) if found == heading]
    source = example(body, bullets(body)[-1][1])
    assert source is not None, heading
    module = types.ModuleType(f"docs_example_{heading.split('(')[0]}")
    exec(compile(source, f"docs/plugins.md: {heading}", "exec"), module.__dict__)  # noqa: S102
    return module


# --------------------------------------------------------------------------- the manual


def test_every_hook_section_has_its_form_and_a_working_example():
    problems = manual_problems(MANUAL.read_text())
    assert problems == [], "\n".join(problems)


def test_the_examples_name_nothing_they_do_not_define_or_import(tmp_path):
    markdown = MANUAL.read_text()
    for index, (heading, body) in enumerate(hook_sections(markdown)):
        source = example(body, bullets(body)[-1][1])
        assert source is not None, heading
        (tmp_path / f"example_{index:02d}_{SIGNATURE.match(heading)['name']}.py").write_text(source)  # type: ignore[index]
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "F821",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- the checker, on bad samples

GOOD = '''
### order_packed(order, event)

- **Kind:** stage hook; not `firstresult`.
- **When:** stage 4.
- **Arguments:** `order` (`Order`), `event` (`dict`).
- **Returns:** ignored.
- **Delivery:** after commit, at least once. Idempotency key: `event["id"]`.
- **On raise:** retried.
- **Example:**

```python
from engine.plugin_api import hookimpl


@hookimpl
def order_packed(order, event):
    print(order.number, event["id"])
```
'''


def _check(sample: str) -> list[str]:
    [(heading, body)] = sections(sample)
    return section_problems(heading, body, stage=True)


def test_the_checker_passes_a_good_sample():
    assert _check(GOOD) == []


@pytest.mark.parametrize("label", BULLETS[:-1])
def test_the_checker_fails_a_section_without_a_bullet(label):
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"- **{label}:**")]
    [problem] = _check("\n".join(lines))
    assert "the bullets are" in problem and label not in problem.split(", not ")[0]


def test_the_checker_fails_bullets_out_of_order():
    swapped = GOOD.replace("- **Returns:** ignored.\n- **Delivery:**", "- **Delivery:** x\n- **Returns:**")
    assert "the bullets are" in _check(swapped)[0]


@pytest.mark.parametrize("change, expected", [
    (("def order_packed(order, event):", "def order_packed(order):"), "takes ('order',), not ('order', 'event')"),
    (("def order_packed(", "def order_pakced("), "defines no (or more than one) @hookimpl def order_packed"),
    (("@hookimpl\n", ""), "defines no (or more than one) @hookimpl def order_packed"),
    (("    print(order.number", "print(order.number"), "does not compile"),
    (("from engine.plugin_api import hookimpl", "import logging"), "does not import hookimpl"),
    (('`event["id"]`', "`order.id`"), 'does not say event["id"]'),
    (("stage hook", "a hook"), "does not say 'stage hook'"),
    (("```python", "```"), "no ```python block"),
])
def test_the_checker_fails_a_wrong_example_or_kind(change, expected):
    problems = _check(GOOD.replace(*change))
    assert any(expected in problem for problem in problems), problems


def test_the_checker_fails_a_missing_duplicated_or_unknown_section():
    markdown = MANUAL.read_text()
    missing = markdown.replace("### order_packed(order, event)", "### order_packed_(order, event)")
    assert any("order_packed(order, event): 0 sections" in p for p in manual_problems(missing))
    assert any("order_packed_(order, event): no such hookspec" in p for p in manual_problems(missing))
    start = markdown.index("### order_packed(order, event)")
    end = markdown.index("### order_shipped(", start)
    twice = markdown[:end] + markdown[start:end] + markdown[end:]
    assert any("order_packed(order, event): 2 sections" in p for p in manual_problems(twice))


def test_the_checker_fails_stage_sections_out_of_the_six_stages_order():
    markdown = MANUAL.read_text()
    start = markdown.index("### order_packed(order, event)")
    end = markdown.index("### order_shipped(", start)
    after = markdown.index("### order_delivered(", end)
    moved = markdown[:start] + markdown[end:after] + markdown[start:end] + markdown[after:]
    assert any("the stage hook sections are in the order" in p for p in manual_problems(moved))
