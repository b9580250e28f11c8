"""Static checks in the test run, so CI's plain ``pytest`` runs them: mypy over ``engine`` and ``plugins``
(the ``[tool.mypy]`` settings of pyproject.toml, its baseline included) and ``ruff check .``.

Both run in one xdist group (``--dist loadgroup``), so they share one worker instead of taking two cores
at once. mypy takes about 30 s with a cold cache on a loaded 2-core machine (a few seconds warm).
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.xdist_group("static_checks")


def test_mypy_is_clean_on_engine_and_plugins():
    from mypy import api

    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                      "--cache-dir", str(ROOT / ".mypy_cache"),
                                      str(ROOT / "engine"), str(ROOT / "plugins")])
    assert status == 0, stdout + stderr
    assert "Success: no issues found" in stdout


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
