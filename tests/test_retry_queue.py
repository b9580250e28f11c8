"""The engine's one retry queue (``engine.retry_queue``): enqueue is idempotent and transactional, claims
hold a lease (an expired one is claimed again), failures back off on the kind's schedule and end dead,
requeue starts over, and many workers at once (PostgreSQL, ``FOR UPDATE SKIP LOCKED``) hand each task to
its handler exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from conftest import make_app

from engine import hookimpl, retry_queue
from engine.db import as_utc, db, transaction, utcnow
from engine.models import RetryTask
from engine.retry_queue import TaskKind, enqueue, failure, success

OTHER_LISTENERS = ["channel_webhook", "accounting_export", "notify_email"]


class Kinds:
    """A test plugin with one kind, ``test.echo``, whose handler answers what ``plan`` says per key."""

    def __init__(self):
        self.calls: list[str] = []
        self.dead: list[str] = []
        self.requeued: list[str] = []
        self.plan: dict[str, str] = {}  # key -> "ok" (default), "fail", "final", "raise", "progress"
        self.seen_payloads: list[dict] = []
        self.lock = threading.Lock()

    def handle(self, tasks):
        outcomes = []
        for task in tasks:
            with self.lock:
                self.calls.append(task.key)
            what = self.plan.get(task.key, "ok")
            if what == "raise":
                raise RuntimeError(f"handler broke on {task.key}")
            if what == "progress":  # fails, and records how far it got: a retry starts from there
                self.seen_payloads.append(dict(task.payload))
                step = int(task.payload.get("step", 0)) + 1
                outcomes.append(failure(f"stopped after step {step}", payload={**task.payload, "step": step}))
                continue
            outcomes.append(success() if what == "ok" else failure(f"{what} {task.key}", retry=what != "final"))
        return outcomes

    @hookimpl
    def register_task_kinds(self):
        return [TaskKind(name="test.echo", handler=self.handle, delays=(10, 60), lease=timedelta(seconds=30),
                         batch=5, on_dead=lambda task, outcome: self.dead.append(task.key),
                         on_requeue=lambda tasks: self.requeued.extend(t.key for t in tasks))]


@pytest.fixture
def kinds():
    return Kinds()


@pytest.fixture
def queue_app(database, tmp_path, request, kinds):
    app = make_app(database, tmp_path, request, PLUGINS_DISABLED=OTHER_LISTENERS, EXTRA_PLUGINS=[("kinds", kinds)])
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def rows() -> dict[str, RetryTask]:
    db.session.expire_all()
    found = {t.key: t for t in db.session.execute(db.select(RetryTask).where(RetryTask.kind == "test.echo")).scalars()}
    db.session.commit()
    return found


def test_enqueue_is_idempotent_and_part_of_the_callers_transaction(queue_app):
    with transaction():
        first = enqueue("test.echo", "a", {"n": 1})
        assert first is not None and enqueue("test.echo", "a", {"n": 2}) is None
    with pytest.raises(RuntimeError), transaction():
        enqueue("test.echo", "b", {})
        raise RuntimeError("the caller's use case fails")
    found = rows()
    assert list(found) == ["a"] and found["a"].payload == {"n": 1} and found["a"].status == "pending"


def test_a_claim_holds_a_lease_and_an_expired_lease_is_claimed_again(queue_app):
    now = utcnow()
    with transaction():
        for key in ("a", "b", "c"):
            enqueue("test.echo", key, {}, at=now)
        enqueue("test.echo", "later", {}, at=now + timedelta(hours=1))
    claimed = retry_queue.claim(now, ["test.echo"], limit=10, lease=timedelta(seconds=30))
    assert [t.key for t in claimed] == ["a", "b", "c"] and {t.attempts for t in claimed} == {1}
    assert retry_queue.claim(now + timedelta(seconds=29), limit=10) == []  # leased: nobody else takes them
    assert rows()["a"].status == "running"
    again = retry_queue.claim(now + timedelta(seconds=31), ["test.echo"], limit=2)  # the worker died
    assert [(t.key, t.attempts) for t in again] == [("a", 2), ("b", 2)]
    # the first worker's late outcome for "a" is not recorded: the claim is no longer its own
    kind = retry_queue.task_kinds()["test.echo"]
    retry_queue.record(kind, [claimed[0]], [success()], now + timedelta(seconds=32))
    assert rows()["a"].status == "running"


def test_failures_back_off_on_the_schedule_then_the_task_is_dead(queue_app, kinds):
    now = utcnow()
    kinds.plan = {"x": "fail"}
    with transaction():
        enqueue("test.echo", "x", {}, at=now)
    assert retry_queue.run_due(now) == 1
    task = rows()["x"]
    assert task.status == "pending" and task.attempts == 1 and task.last_error == "fail x"
    assert abs((as_utc(task.next_attempt_at) - (now + timedelta(seconds=10))).total_seconds()) < 0.01
    assert retry_queue.run_due(now + timedelta(seconds=9)) == 0  # not yet: nothing sleeps, nothing runs early
    assert retry_queue.run_due(now + timedelta(seconds=10)) == 1
    assert rows()["x"].status == "pending" and rows()["x"].attempts == 2
    assert retry_queue.run_due(now + timedelta(seconds=69)) == 0
    assert retry_queue.run_due(now + timedelta(seconds=70)) == 1  # after the last delay: dead
    assert rows()["x"].status == "dead" and kinds.dead == ["x"] and kinds.calls == ["x", "x", "x"]
    assert retry_queue.run_due(now + timedelta(days=30)) == 0
    assert retry_queue.counts()["test.echo"]["dead"] == 1


def test_a_failure_may_record_the_progress_its_retry_starts_from(queue_app, kinds):
    """``failure(..., payload=)`` replaces the task's payload with its outcome (the stage-hook relay keeps
    the plugins that already handled an event there); a success leaves the payload as it was."""
    now = utcnow()
    kinds.plan = {"p": "progress"}
    with transaction():
        enqueue("test.echo", "p", {"order_id": 7}, at=now)
    assert retry_queue.run_due(now) == 1
    assert rows()["p"].payload == {"order_id": 7, "step": 1} and rows()["p"].last_error == "stopped after step 1"
    assert retry_queue.run_due(now + timedelta(seconds=10)) == 1
    assert kinds.seen_payloads == [{"order_id": 7}, {"order_id": 7, "step": 1}]
    kinds.plan = {}
    assert retry_queue.run_due(now + timedelta(seconds=70)) == 1
    task = rows()["p"]
    assert task.status == "done" and task.payload == {"order_id": 7, "step": 2}


def test_a_final_failure_is_dead_at_once_and_a_raising_handler_is_retried(queue_app, kinds):
    now = utcnow()
    kinds.plan = {"gone": "final", "boom": "raise"}
    with transaction():
        enqueue("test.echo", "gone", {}, at=now)
    retry_queue.run_due(now)
    assert rows()["gone"].status == "dead" and kinds.dead == ["gone"]
    with transaction():
        enqueue("test.echo", "boom", {}, at=now)
        enqueue("test.echo", "fine", {}, at=now)
    retry_queue.run_due(now)  # one batch: the handler raised for all of it
    found = rows()
    assert found["boom"].status == found["fine"].status == "pending" and found["boom"].attempts == 1
    assert "handler broke on boom" in found["fine"].last_error


def test_jitter_spreads_the_delay_within_its_bounds():
    now = utcnow()
    spread = [(retry_queue.backoff([100], 1, now, jitter=0.2) - now).total_seconds() for _ in range(50)]
    assert all(80 <= s <= 120 for s in spread) and len(set(spread)) > 1
    assert retry_queue.backoff([100], 2, now) is None


def test_requeue_puts_dead_tasks_back_with_a_fresh_schedule(queue_app, kinds):
    now = utcnow()
    kinds.plan = {"x": "final", "y": "final"}
    with transaction():
        enqueue("test.echo", "x", {}, at=now)
        enqueue("test.echo", "y", {}, at=now)
    retry_queue.run_due(now)
    x_id = rows()["x"].id
    assert retry_queue.requeue([x_id]) == 1 and kinds.requeued == ["x"]
    assert rows()["x"].status == "pending" and rows()["x"].attempts == 0
    kinds.plan = {}
    retry_queue.run_due(utcnow())
    assert rows()["x"].status == "done" and rows()["y"].status == "dead"
    result = queue_app.test_cli_runner().invoke(args=["tasks", "requeue", "--kind", "test.echo"])
    assert result.exit_code == 0 and "requeued 1 task(s)" in result.output
    assert rows()["y"].status == "pending"
    listed = queue_app.test_cli_runner().invoke(args=["tasks", "--kind", "test.echo"])
    assert listed.exit_code == 0 and "test.echo y pending" in listed.output and "test.echo x" not in listed.output
    refused = queue_app.test_cli_runner().invoke(args=["tasks", "requeue", "--kind", "nobody.knows"])
    assert refused.exit_code != 0 and "no plugin registers" in refused.output


def test_healthz_reports_dead_tasks(queue_app, kinds):
    kinds.plan = {"x": "final"}
    with transaction():
        enqueue("test.echo", "x", {})
    retry_queue.run_due(utcnow())
    report = queue_app.test_client().get("/healthz").get_json()
    assert report["tasks"]["dead"] == 1 and report["tasks"]["dead_by_kind"] == {"test.echo": 1}


@pytest.mark.parametrize("database", ["postgresql"])
def test_many_workers_hand_each_task_to_the_handler_exactly_once(queue_app, kinds):
    tasks, workers = 300, 6
    now = utcnow()
    with transaction():
        for n in range(tasks):
            enqueue("test.echo", f"k{n}", {"n": n}, at=now)
    errors: list[Exception] = []
    start = threading.Barrier(workers)
    app = queue_app

    def worker():
        with app.app_context():
            try:
                start.wait()
                while retry_queue.run_due(utcnow()):
                    pass
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sorted(kinds.calls) == sorted(f"k{n}" for n in range(tasks))  # every task once, none twice
    assert {t.status for t in rows().values()} == {"done"}
