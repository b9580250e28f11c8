"""``hookshop worker``, ``jobs``, ``relay`` and ``outbox``: background work in production mode (rq on Redis) and
the outbox it delivers."""

from __future__ import annotations

import os
import signal
import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from engine import structured_logs


@click.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
@click.option("--with-sweeper/--no-sweeper", default=True, help="also retry due outbox events every 5 s")
@click.option("--fork/--no-fork", default=False, show_default=True,
              help="run each job in a forked work horse (rq's default) instead of in the worker process")
@with_appcontext
def worker_command(burst, with_sweeper, fork):
    """Process background jobs (production mode: needs REDIS_URL).

    By default jobs run in the worker process itself (rq's SimpleWorker): no fork per job, so a worker
    keeps up with the outbox, and SIGTERM (a warm shutdown: the running job finishes, then the worker
    exits) leaves no work horse behind. A stage hook that raises never fails its job: the outbox retries
    it; a job fails only when the engine itself could not run (see `hookshop jobs failed`)."""
    from rq import Queue, SimpleWorker, Worker

    from engine import jobs
    from engine.db import db

    app = current_app._get_current_object()
    structured_logs.configure(app)
    q = _worker_queue(app)
    jobs._worker_app = app
    engine = db.engine

    class PromptStop:
        """rq's pubsub thread (commands like a stop sent to this worker) reads with a 60 s timeout, and redis-py's
        ``stop()`` waits for that read to end: a SIGTERM's warm shutdown could wait a minute after its job.
        A 1 s read lets it end within a second."""

        def subscribe(self):
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=1, daemon=True,
                                                           exception_handler=self._pubsub_exception_handler)

    class InProcessWorker(PromptStop, SimpleWorker):
        pass

    class ForkingWorker(PromptStop, Worker):
        def main_work_horse(self, job, queue):
            # rq forks a work horse per job: it must not reuse the pooled connections it
            # inherited (the sweeper thread uses them in the parent); close=False leaves them open there
            engine.dispose(close=False)
            return super().main_work_horse(job, queue)

    if with_sweeper and not burst:
        jobs.sweep(app)
    worker_class = ForkingWorker if fork else InProcessWorker
    # plugins' jobs (engine.jobs.enqueue): the e-mails' "email" queue by default
    queues = [q] + [Queue(name, connection=q.connection) for name in app.config.get("JOB_QUEUES") or []]
    # no rq scheduler (a process of its own): hookshop schedules nothing on rq, its retries are the outbox's
    # after a lost Redis the command starts afresh (same pid): no thread or client of the rq worker that quit
    # stays behind to share state with the next one
    _work_through_redis_outages(lambda: worker_class(queues, connection=q.connection), burst,
                                restart=lambda: os.execv(sys.executable, [sys.executable, *sys.argv]))


def _work_through_redis_outages(make_worker, burst: bool, pause: float = 2.0, restart=None) -> None:
    """Run rq workers until one stops normally (burst done, SIGTERM). rq gives up on a Redis error raised
    while it finishes a job; the worker then starts again ``pause`` seconds later (``restart``: the
    command re-executes itself) instead of exiting and leaving the outbox to nobody."""
    import logging
    import threading

    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    log = logging.getLogger("hookshop.worker")
    stop = threading.Event()  # SIGTERM/SIGINT between two workers: stop, as rq's warm shutdown would
    while True:
        worker = make_worker()
        try:
            worker.work(burst=burst, with_scheduler=False)
            return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if burst:
                raise
            if worker._shutdown_requested_date is not None:  # asked to stop: only rq's goodbye to Redis failed
                return
            log.warning("lost Redis (%s); starting the rq worker again in %.0f s (the sweeper keeps delivering "
                        "stage hooks from the outbox meanwhile)", exc, pause)
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        stopped = stop.wait(pause)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if stopped:
            return
        if restart is not None:
            restart()


def _worker_queue(app):
    """The rq queue with a client of its own: rq's blocking reads need a longer socket timeout than
    enqueueing uses."""
    from redis import Redis
    from rq import Queue

    if not app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set: in the embedded mode the web process delivers stage "
                                   "hooks on a background thread, no worker is needed. "
                                   "Set REDIS_URL=redis://127.0.0.1:6379/0 to use rq.")
    return Queue(app.config.get("QUEUE") or "hookshop", connection=Redis.from_url(app.config["REDIS_URL"]))


@click.group("jobs", cls=AppGroup)
def jobs_group():
    """rq jobs that failed (production mode): list them, put them back on the queue."""


@jobs_group.command("failed")
@with_appcontext
def jobs_failed_command():
    """List the failed jobs of the queue, newest first, with the last line of their error."""
    from rq.job import Job

    from engine.domain.privacy import redact_text

    q = _worker_queue(current_app)
    ids = q.failed_job_registry.get_job_ids(desc=True)
    if not ids:
        click.echo(f"no failed jobs on queue {q.name}")
        return
    for job in Job.fetch_many(ids, connection=q.connection):
        if job is None:  # expired between the two reads
            continue
        error = (job.latest_result().exc_string if job.latest_result() else "") or ""
        last = error.strip().splitlines()[-1] if error.strip() else "-"
        ended = job.ended_at.isoformat(timespec="seconds") if job.ended_at else "-"
        click.echo(f"{job.id}  {job.func_name}  ended {ended}  {redact_text(last)[:200]}")
    click.echo(f"{len(ids)} failed; put them back with `hookshop jobs requeue --all` (or by id)")


@jobs_group.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="every failed job of the queue")
@with_appcontext
def jobs_requeue_command(job_ids, everything):
    """Put failed jobs back on the queue (a worker then runs them again)."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError

    q = _worker_queue(current_app)
    registry = q.failed_job_registry
    if everything == bool(job_ids):
        raise click.UsageError("give job ids or --all (see `hookshop jobs failed`)")
    wanted = registry.get_job_ids() if everything else list(job_ids)
    missing = []
    for job_id in wanted:
        try:
            registry.requeue(job_id)
        except (NoSuchJobError, InvalidJobOperation):
            missing.append(job_id)
    click.echo(f"requeued {len(wanted) - len(missing)} job(s) on {q.name}")
    if missing:
        raise click.ClickException(f"not among the failed jobs: {', '.join(missing)} (see `hookshop jobs failed`)")


@click.command("relay")
@with_appcontext
def relay_command():
    """Deliver due outbox events once (retries), e.g. from cron."""
    from engine import jobs
    from engine.services.auth import purge_idempotency

    count = jobs.relay_due()
    done = jobs.complete_due_followups()
    refunds = jobs.retry_stale_refunds()
    jobs.run_periodic_tasks()
    purged = purge_idempotency(current_app.config.get("IDEMPOTENCY_TTL_HOURS") or 24)
    click.echo(f"{count} events relayed, {done} orders completed, {refunds} stale refunds settled, "
               f"{purged} old idempotency records removed")


@click.command("outbox")
@click.option("--status", default="pending", type=click.Choice(["pending", "running", "done", "dead"]),
              show_default=True, help="pending: not delivered yet (due, retrying, or leased to a relay)")
@with_appcontext
def outbox_command(status):
    """List stage-hook events by status, newest first (failed plugins show their last error). The events are
    the retry queue's tasks of kind stage_hook: `hookshop tasks requeue --kind stage_hook` puts dead ones back."""
    from engine import outbox

    for event in outbox.events(outbox.WAITING if status == "pending" else status, newest_first=True, limit=100):
        leased = f" leased-until={event.leased_until}" if event.status == "running" else ""
        click.echo(f"#{event.id} {event.hook} attempts={event.attempts} next={event.next_attempt_at}{leased} "
                   f"done={','.join(event.done_plugins) or '-'}")
        if event.last_error:
            click.echo("    " + event.last_error.splitlines()[0])


@click.group("tasks", cls=AppGroup, invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "running", "done", "dead"]), default=None,
              help="only tasks with this status (default: every status but done)")
@click.option("--kind", default=None, help="only tasks of this kind (e.g. channel_webhook.delivery)")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.pass_context
@with_appcontext
def tasks_group(ctx, status, kind, limit):
    """The retry queue: list its tasks (newest first), with their attempts and last error."""
    if ctx.invoked_subcommand is not None:
        return
    from engine import retry_queue

    rows = retry_queue.list_tasks(status, kind, limit)
    if status is None:
        rows = [task for task in rows if task.status != "done"]
    for task in rows:
        when = task.leased_until if task.status == "running" else task.next_attempt_at
        click.echo(f"#{task.id} {task.kind} {task.key} {task.status} attempts={task.attempts} "
                   f"{'leased until' if task.status == 'running' else 'next'}={when.isoformat() if when else '-'}")
        if task.last_error:
            click.echo("    " + task.last_error.strip().splitlines()[-1][:200])
    totals = retry_queue.counts()
    click.echo("; ".join(f"{name}: " + ", ".join(f"{s} {n}" for s, n in by.items()) for name, by in totals.items())
               or "no tasks")


@tasks_group.command("requeue")
@click.argument("task_ids", nargs=-1, type=int)
@click.option("--kind", default=None, help="every dead task of this kind")
@with_appcontext
def tasks_requeue_command(task_ids, kind):
    """Put dead tasks back, due now with a fresh schedule (by id, or every dead task of --kind)."""
    from engine import retry_queue

    if bool(task_ids) == bool(kind):
        raise click.UsageError("give task ids or --kind (see `hookshop tasks --status dead`)")
    if kind is not None and kind not in retry_queue.task_kinds():
        raise click.ClickException(f"no plugin registers the task kind {kind!r}: "
                                   f"known: {', '.join(retry_queue.task_kinds()) or 'none'}")
    count = retry_queue.requeue(list(task_ids) or None, kind=kind, dead_only=kind is not None)
    click.echo(f"requeued {count} task(s); the sweeper runs them in its next round")
    if task_ids and count < len(task_ids):
        raise click.ClickException("some ids are not dead or waiting tasks (see `hookshop tasks`)")
