"""docs/plugins.md, "A carrier plugin in 30 minutes", followed step by step from the tutorial's own blocks.

The test reads the tutorial's section and runs its blocks in order, so the doc and the test cannot drift:

* a ``sh`` block's lines are run (each command the tutorial uses has its step here; a command it does not
  know fails the test, so a new step in the doc needs its counterpart here). ``# ...`` lines after
  ``hookshop plugins`` are what its listing must show for the plugin; ``# -> {...}`` after a ``curl`` is
  JSON the answer must contain;
* a ``python`` block is written to the file its caption names (the line before it ends with
  ```path`...:``), relative to the plugin's folder.

Stand-ins, for speed (a fresh virtual environment takes minutes: tests/test_plugin_scaffold.py does that
once): ``pip install -e '.[test]'`` puts the plugin's folder on ``PYTHONPATH`` and names it in
``HOOKSHOP_EXTRA_PLUGINS`` (as its entry point would); ``hookshop`` is ``python -m engine.cli``;
``hookshop serve`` and ``curl`` are the app's test client in a subprocess (the plugin's models never enter
this process's metadata). The generated tests run in a subprocess, as the author runs ``pytest``, on
SQLite only (``-k "not postgresql"``: tests/test_plugin_scaffold.py runs generated tests on both).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANUAL = ROOT / "docs" / "plugins.md"
FILE_CAPTION = re.compile(r"`((?:[\w.-]+/)*[\w.-]+\.py)`[^`]*:$")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
API_KEY = re.compile(r"^KEY=\$\((hookshop create-api-key [^|]+)\| tail -n 1\)$")


@dataclass
class Block:
    language: str
    code: str
    caption: str


@dataclass
class Command:
    line: str
    expect: list[str] = field(default_factory=list)


def tutorial() -> str:
    text = MANUAL.read_text()
    start = text.index("\n## A carrier plugin in 30 minutes\n")
    return text[start:text.index("\n## ", start + 1)]


def blocks(text: str) -> list[Block]:
    found, lines = [], text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```") and line.strip() != "```":
            caption = next((prev for prev in reversed(lines[:index]) if prev.strip()), "")
            end = lines.index("```", index + 1)
            found.append(Block(line[3:].strip(), "\n".join(lines[index + 1:end]) + "\n", caption))
            index = end
        index += 1
    return found


def commands(code: str) -> list[Command]:
    """The block's command lines, each with the comment lines that follow it."""
    found: list[Command] = []
    for line in code.splitlines():
        if line.startswith("#"):
            found[-1].expect.append(line[1:].strip())
        elif line.strip():
            found.append(Command(line.strip()))
    return found


def collapse(text: str) -> str:
    return " ".join(text.split())


def contains(actual, expected) -> bool:
    """``expected`` is in ``actual``: a dict's keys with matching values, a list's items each matched by one."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(contains(a, e) for a in actual) for e in expected)
    return actual == expected


def env_of(assignments: list[str], cwd: Path) -> dict:
    return {name: value.replace("$PWD", str(cwd)) for name, value in (a.split("=", 1) for a in assignments)}


def check_listing(stdout: str, expect: list[str]) -> None:
    """The plugin's lines of ``hookshop plugins`` start with the tutorial's lines, in order."""
    name = expect[0].split()[0]
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() and line.split()[0] == name)
    own = [lines[start]] + [line for line in lines[start + 1:] if line.startswith(" ")][:50]
    own = own[:next((i for i, line in enumerate(lines[start + 1:], 1) if not line.startswith(" ")), len(own))]
    position = 0
    for wanted in expect:
        while position < len(own) and not collapse(own[position]).startswith(collapse(wanted)):
            position += 1
        assert position < len(own), f"{wanted!r} not in the plugin's listing:\n" + "\n".join(own)


def test_the_tutorial_ships_an_order_through_the_new_carrier(tmp_path):
    from click.testing import CliRunner
    from test_plugin_scaffold import _env

    from engine.cli import cli

    cwd, env, written, followed = tmp_path, _env(PYTHONPATH=str(ROOT)), [], []
    for block in blocks(tutorial()):
        if block.language == "python":
            match = FILE_CAPTION.search(block.caption)
            assert match, f"a python block whose caption names no file: {block.caption!r}"
            path = cwd / match[1]
            assert path.parent.is_dir(), f"{match[1]}: no such folder in {cwd}"
            path.write_text(block.code)
            written.append(match[1])
            continue
        assert block.language == "sh", block.language
        shop: list[Command] = []
        for command in commands(block.code):
            words = shlex.split(command.line)
            split = next((i for i, w in enumerate(words) if not ASSIGNMENT.match(w)), len(words))
            assignments, args = words[:split], words[split:]
            if shop or args[:2] == ["hookshop", "init"]:
                shop.append(command)  # a shop's commands: run together against one app, below
            elif args[:3] == ["hookshop", "plugins", "new"]:
                args[args.index("--output") + 1] = str(cwd / args[args.index("--output") + 1])
                result = CliRunner().invoke(cli, args[1:])
                assert result.exit_code == 0, result.output
                followed.append("new")
            elif args[0] == "cd":
                cwd = cwd / args[1]
            elif args[:3] == ["pip", "install", "-e"]:
                assert args[3] == ".[test]" and (cwd / "pyproject.toml").exists()
                env.update(PYTHONPATH=os.pathsep.join([str(cwd), str(ROOT)]),
                           HOOKSHOP_EXTRA_PLUGINS="acme_courier=acme_courier")
                followed.append("install")
            elif args == ["pytest"]:
                result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                                         "-k", "not postgresql"], cwd=cwd, env=env, capture_output=True, text=True,
                                        timeout=600)
                assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
                assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout
                followed.append("pytest")
            elif args == ["hookshop", "plugins"]:
                listing = subprocess.run(
                    [sys.executable, "-m", "engine.cli", "plugins"], cwd=cwd, capture_output=True, text=True,
                    timeout=120, env={**env, **env_of(assignments, cwd), "HOOKSHOP_INSTANCE": str(tmp_path / "i")})
                assert listing.returncode == 0, listing.stderr
                check_listing(listing.stdout, command.expect)
                followed.append("plugins")
            elif args[0] == "export":
                env.update(env_of(args[1:], cwd))
            else:
                raise AssertionError(f"the tutorial runs a command this test does not follow: {command.line}")
        if shop:
            steps = tmp_path / "shop-steps.json"
            steps.write_text(json.dumps({"cwd": str(cwd), "commands": [vars(c) for c in shop]}))
            done = subprocess.run([sys.executable, __file__, str(steps)], cwd=cwd, env=env, capture_output=True,
                                  text=True, timeout=300)
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
            assert "shipped with acme_courier" in done.stdout, done.stdout
            followed.append("shop")
    assert written == ["acme_courier/settings.py", "acme_courier/carrier.py", "acme_courier/__init__.py",
                       "tests/conftest.py", "tests/test_shipping.py"]
    assert followed == ["new", "install", "pytest", "plugins", "plugins", "shop"]
    assert (cwd / "label.pdf").read_bytes().startswith(b"%PDF")


# --------------------------------------------------------------------------- the shop, in its own process


def run_shop(cwd: Path, shop: list[dict]) -> None:
    """``hookshop init``, an API key, ``hookshop serve`` and ``curl``: the CLI through the app's runner,
    the server as its test client."""
    from engine.app import create_app

    app = create_app({})  # the environment's settings, as `hookshop` reads them (HOOKSHOP_INSTANCE: SQLite)
    client, variables, shipped = app.test_client(), {"PWD": str(cwd)}, []
    for command in shop:
        line = command["line"]
        for name, value in variables.items():
            line = line.replace(f"${name}", value)
        words = shlex.split(line)
        if words[:2] == ["hookshop", "init"]:
            result = app.test_cli_runner().invoke(args=["init"])
            assert result.exit_code == 0, result.output
        elif match := API_KEY.match(line):
            result = app.test_cli_runner().invoke(args=shlex.split(match[1])[1:])
            assert result.exit_code == 0, result.output
            variables["KEY"] = result.output.strip().splitlines()[-1]
        elif words[:2] == ["hookshop", "serve"]:
            assert words[-1] == "&"
        elif ASSIGNMENT.match(line) and len(words) == 1:
            name, value = line.split("=", 1)
            variables[name] = value
        elif words[0] == "curl":
            method, headers, data, output, url = "GET", {}, None, None, None
            rest = iter(words[1:])
            for word in rest:
                if word == "-X":
                    method = next(rest)
                elif word == "-H":
                    key, value = next(rest).split(":", 1)
                    headers[key.strip()] = value.strip()
                elif word == "-d":
                    data = next(rest)
                elif word == "-o":
                    output = cwd / next(rest)
                elif word.startswith("http"):
                    url = word
                else:
                    assert word == "-s", word
            assert url and url.startswith("http://127.0.0.1:5000/"), url
            resp = client.open(url.removeprefix("http://127.0.0.1:5000"), method=method, headers=headers, data=data)
            assert resp.status_code < 400, (line, resp.status_code, resp.get_data(as_text=True))
            if output is not None:
                output.write_bytes(resp.data)
                continue
            answer = resp.get_json()
            if isinstance(answer, dict) and answer.get("status") == "shipped":
                shipped += [s["tracking_number"] for s in answer["shipments"] if s["carrier"] == "acme_courier"]
            for expected in command["expect"]:
                assert expected.startswith("-> "), expected
                assert contains(answer, json.loads(expected[3:])), (line, expected, answer)
        else:
            raise AssertionError(f"not a shop command: {line}")
    assert shipped, "no order was shipped with acme_courier"
    print("shipped with acme_courier:", *shipped)


if __name__ == "__main__":
    spec = json.loads(Path(sys.argv[1]).read_text())
    run_shop(Path(spec["cwd"]), spec["commands"])
