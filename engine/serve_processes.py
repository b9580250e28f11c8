"""``hookshop serve --workers N``: N server processes on one listening socket.

The first process (the supervisor) opens the socket and starts N copies of ``hookshop serve`` that inherit
it (``--listen-fd``): the kernel hands each new connection to one of them, so the processes share the load
without a proxy in front, and one that dies takes only its own requests with it. Each worker is a whole
engine: its own database pool, and, in the embedded mode, its own delivery thread and sweeper (the outbox's
leases keep them from delivering an event twice).

The supervisor serves nothing itself. It restarts a worker that dies (at most ``MAX_RESTARTS`` a minute,
then it gives up and stops the others, so a worker that cannot start does not loop forever), and on
SIGTERM or SIGINT it passes SIGTERM on to every worker, waits ``STOP_TIMEOUT`` seconds for them to finish
their requests, kills what is left and exits: no worker outlives it."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

log = logging.getLogger("hookshop.serve")
MAX_RESTARTS = 5  # per minute
STOP_TIMEOUT = 30.0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _start(sock: socket.socket, host: str, port: int, threads: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "engine.cli", "serve", "--host", host, "--port", str(port),
               "--threads", str(threads), "--listen-fd", str(sock.fileno())]
    return subprocess.Popen(command, pass_fds=(sock.fileno(),))


def supervise(host: str, port: int, threads: int, workers: int) -> int:
    """Run ``workers`` server processes until SIGTERM/SIGINT; returns the exit code."""
    sock = _listen(host, port)
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [_start(sock, host, port, threads) for _ in range(workers)]
    restarts: list[float] = []
    code = 0
    try:
        while not stopping:
            for index, proc in enumerate(processes):
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > MAX_RESTARTS:
                    log.error("server processes keep dying (%s restarts in a minute): stopping", MAX_RESTARTS)
                    print(f"hookshop: server processes keep dying (exit code {proc.returncode}); stopping. "
                          "Read their errors above.", file=sys.stderr)
                    stopping.append(None)
                    code = 1
                    break
                log.warning("server process %s ended (exit code %s): starting another", proc.pid, proc.returncode)
                processes[index] = _start(sock, host, port, threads)
            time.sleep(0.2)
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def pids_of_workers(parent: int) -> list[int]:
    """The worker processes of a supervisor (Linux: read from /proc), for tests and operators."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry))
    return sorted(found)
