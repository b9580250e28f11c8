"""``hookshop worker`` survives a Redis outage: rq's worker gives up on a Redis error raised while it
finishes a job (it quits), and the command starts a new rq worker instead of exiting, so its sweeper and
the queue go on once Redis is back (the whole scenario: tests/reliability/test_redis_outage.py)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from engine.worker_commands import _work_through_redis_outages


class FakeWorker:
    """An rq worker whose ``work`` raises the next of ``outcomes`` (or returns for None)."""

    def __init__(self, outcomes: list, started: list, stop_requested: bool = False):
        self.outcomes, self.started = outcomes, started
        self._shutdown_requested_date = "now" if stop_requested else None

    def work(self, burst, with_scheduler):
        self.started.append((burst, with_scheduler))
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome


def test_a_lost_redis_starts_a_new_rq_worker_until_one_stops_normally():
    outcomes, started = [RedisConnectionError("refused"), RedisConnectionError("refused"), None], []
    _work_through_redis_outages(lambda: FakeWorker(outcomes, started), burst=False, pause=0)
    assert started == [(False, False)] * 3 and outcomes == []


def test_a_worker_asked_to_stop_stops_even_when_its_goodbye_to_redis_fails():
    outcomes, started = [RedisConnectionError("refused"), None], []
    _work_through_redis_outages(lambda: FakeWorker(outcomes, started, stop_requested=True), burst=False, pause=0)
    assert len(started) == 1


def test_a_burst_worker_reports_the_lost_redis():
    with pytest.raises(RedisConnectionError):
        _work_through_redis_outages(lambda: FakeWorker([RedisConnectionError("refused")], []), burst=True, pause=0)


def test_other_errors_are_not_swallowed():
    with pytest.raises(ValueError):
        _work_through_redis_outages(lambda: FakeWorker([ValueError("a bug")], []), burst=False, pause=0)


def test_the_command_starts_afresh_after_a_lost_redis():
    restarts = []

    def restart():
        restarts.append(True)
        raise SystemExit(0)  # os.execv never returns

    with pytest.raises(SystemExit):
        _work_through_redis_outages(lambda: FakeWorker([RedisConnectionError("refused")], []), burst=False, pause=0,
                                    restart=restart)
    assert restarts == [True]
