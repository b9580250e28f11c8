"""notify_email in production mode: the stage hook's job queues the message, the rq ``email`` queue's
job sends it (a worker of ``hookshop worker``'s kind, run in this process)."""

from __future__ import annotations

import os
import uuid

import pytest
from conftest import service_missing
from notify_email_support import SmtpServer, place, settings, spare_port, stocked_shop
from sqlalchemy import select

from engine import jobs
from engine.db import db
from plugins.notify_email.models import Message

REDIS_URL = os.environ.get("HOOKSHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def queues():
    """Two queues of this test alone (stage hooks, e-mails), deleted with their jobs afterwards."""
    from redis import Redis
    from rq import Queue

    conn = Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except Exception as exc:  # noqa: BLE001
        service_missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    suffix = uuid.uuid4().hex[:8]
    made = {"hooks": Queue(f"hookshop-test-{suffix}", connection=conn),
            "email": Queue(f"hookshop-test-email-{suffix}", connection=conn)}
    yield made
    for queue in made.values():
        for registry in (queue.finished_job_registry, queue.failed_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
        queue.delete(delete_jobs=True)
    conn.close()


@pytest.fixture
def smtp():
    server = SmtpServer(spare_port()).start()
    yield server
    server.stop()


@pytest.fixture
def app_config(smtp, queues):
    return settings(smtp.port, REDIS_URL=REDIS_URL, QUEUE=queues["hooks"].name, MAIL_QUEUE=queues["email"].name,
                    JOB_QUEUES=[queues["email"].name], PLUGINS_DISABLED=["channel_webhook", "accounting_export"])


def test_the_email_job_runs_on_its_own_rq_queue(api, app, smtp, queues):
    from rq import SimpleWorker

    stocked_shop(api)
    order = place(api)
    jobs._worker_app = app  # the worker's app: this test's
    try:
        worker = SimpleWorker([queues["hooks"]], connection=queues["hooks"].connection)
        worker.work(burst=True)  # order_placed: notify_email queues the message and enqueues its job
        assert smtp.inbox.messages == []
        [job] = queues["email"].get_jobs()
        assert job.func_name == "engine.jobs.run_job"
        assert job.args[0] == "plugins.notify_email.sending:send_message"
        SimpleWorker([queues["email"]], connection=queues["email"].connection).work(burst=True)
    finally:
        jobs._worker_app = None
    assert [str(m["Subject"]) for m in smtp.inbox.messages] == [f"We received your order {order['number']}"]
    with app.app_context():
        assert db.session.execute(select(Message.status)).scalars().all() == ["sent"]
