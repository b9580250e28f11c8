"""``hookshop serve --workers N`` on PostgreSQL: N processes answer on one port, a worker killed with
SIGKILL is replaced while the others keep answering, and SIGTERM to the supervisor stops every worker (no
orphan)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from test_cli import HOOKSHOP, _free_port, _get, clean_env, hookshop, pg_url  # noqa: F401

from engine.serve_processes import pids_of_workers


def _wait(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds  # readiness waits, not timing assertions
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_share_the_port_are_replaced_and_stop_together(pg_url, tmp_path):  # noqa: F811
    env = clean_env(HOOKSHOP_INSTANCE=str(tmp_path / "instance"), DATABASE_URL=pg_url)
    hookshop(env, "init")
    key = hookshop(env, "create-api-key", "--name", "t", "--scopes", "read,write").stdout.strip().splitlines()[-1]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    err = open(tmp_path / "serve.err", "w+")
    proc = subprocess.Popen([str(HOOKSHOP), "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=err)
    workers = []
    try:
        workers = _wait(lambda: (w := pids_of_workers(proc.pid)) and len(w) == 2 and w)

        def healthy():
            try:
                return _get(base + "/healthz")[0] == 200
            except OSError:
                return False

        _wait(healthy)

        def orders(_):
            return _get(base + "/api/v1/orders", {"Authorization": f"Bearer {key}"})[0]

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(orders, range(40))) == {200}
        os.kill(workers[0], signal.SIGKILL)
        replaced = _wait(lambda: (w := pids_of_workers(proc.pid)) and len(w) == 2 and workers[0] not in w and w)
        assert workers[1] in replaced
        workers = replaced
        _wait(healthy)
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(orders, range(20))) == {200}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        err.close()
    assert code == 0, (tmp_path / "serve.err").read_text()[-2000:]
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived the supervisor"
