"""`hookshop plugins new`: each kind writes a distribution whose own tests pass as generated; one is built
into a wheel, installed with hookshop in a fresh virtual environment, discovered through its entry point,
and an order flows through its hooks there (its contract tests ship an order with it).

The generated tests run in a subprocess (a fresh interpreter, as a plugin author runs them), on SQLite and
on the machine's PostgreSQL (skipped there without one, failed with HOOKSHOP_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.scaffold import KINDS, check_name, files

ROOT = Path(__file__).resolve().parent.parent


def generate(tmp_path, name, kind) -> Path:
    out = tmp_path / f"hookshop-{name}"
    result = CliRunner().invoke(cli, ["plugins", "new", name, "--kind", kind, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(files(name, kind))} files" in result.output
    return out


def run_pytest(python: str, directory: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", str(directory / "tests")],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=900)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKSHOP_") or k == "HOOKSHOP_REQUIRE_SERVICES"}
    env.update(extra)
    return env


@pytest.mark.parametrize("kind", ["payment", "channel", "exporter", "notifier"])
def test_each_kind_passes_its_own_tests_as_generated(tmp_path, kind):
    name = f"acme_{kind}"
    out = generate(tmp_path, name, kind)
    for path in out.rglob("*.py"):
        source = path.read_text()
        compile(source, str(path), "exec")
        for line in source.splitlines():  # the generated code imports only the public plugin API of the core
            if line.strip().startswith(("from engine", "import engine")):
                assert line.strip().startswith(("from engine.plugin_api import", "from engine.testing")), (path, line)
    env = _env(PYTHONPATH=os.pathsep.join([str(out), str(ROOT)]), HOOKSHOP_EXTRA_PLUGINS=f"{name}={name}")
    result = run_pytest(sys.executable, out, env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_wheel_installed_in_a_fresh_environment_is_discovered_and_ships_orders(tmp_path):
    out = generate(tmp_path, "acme_courier", "carrier")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(out)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "dist").glob("hookshop_acme_courier-0.1.0-*.whl")

    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=300)
    python = str(fresh / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # hookshop itself (and pytest) come from the environment running this test: adding its site directory
    # (its .pth files included) keeps the fresh environment from downloading every dependency again
    Path(site, "hookshop_under_test.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    installed = subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert Path(site, "acme_courier", "migrations", "versions", "0001_acme_courier.py").exists()  # package data

    env = _env(PYTHONPATH=str(ROOT), HOOKSHOP_DATABASE_URL=f"sqlite:///{tmp_path}/shop.sqlite",
               HOOKSHOP_INSTANCE=str(tmp_path / "instance"))
    listing = subprocess.run([python, "-m", "engine.cli", "plugins"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert listing.returncode == 0, listing.stderr
    line = next(line for line in listing.stdout.splitlines() if line.startswith("acme_courier"))
    assert "enabled" in line and "0.1.0" in line, listing.stdout
    assert "register_carriers" in listing.stdout.split(line, 1)[1].splitlines()[1]

    # the tests it was generated with, run from a copy with no plugin code beside them: only the wheel has it
    tests = tmp_path / "only-tests"
    (tests / "tests").mkdir(parents=True)
    for path in (out / "tests").glob("*.py"):
        (tests / "tests" / path.name).write_text(path.read_text())
    result = run_pytest(python, tests, _env(PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "test_an_order_ships_with_a_tracking_number_and_a_pdf_label" in result.stdout or " passed" in result.stdout


def test_names_and_outputs_are_checked(tmp_path):
    for bad in ("Acme", "1acme", "acme-courier", "class", "x", "carrier_generic"):
        assert check_name(bad), bad
    assert check_name("acme_courier") is None
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins", "new", "acme-courier", "--kind", "carrier", "-o", str(tmp_path / "a")])
    assert result.exit_code != 0 and "Python identifier" in result.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    result = runner.invoke(cli, ["plugins", "new", "acme", "--kind", "carrier", "-o", str(tmp_path / "full")])
    assert result.exit_code != 0 and "not empty" in result.output
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    result = runner.invoke(cli, ["plugins", "new", "acme", "--kind", "teleporter", "-o", str(tmp_path / "b")])
    assert result.exit_code != 0 and "teleporter" in result.output
    assert set(KINDS) == {"carrier", "payment", "channel", "exporter", "notifier"}
