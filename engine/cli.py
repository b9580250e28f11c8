"""The ``hookshop`` command (a Flask CLI group; also ``flask --app engine``)."""

from __future__ import annotations

import os
import signal
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from engine import structured_logs
from engine.errors import DomainError, PluginError


def _create_app():
    from engine.app import create_app

    try:
        return create_app()
    except PluginError as exc:
        raise click.ClickException(
            f"{exc}\nFix or uninstall the plugin, or list it in HOOKSHOP_PLUGINS_DISABLED.") from exc


class HookshopGroup(FlaskGroup):
    """Adds the plugins' commands (``register_commands``) to the group, and lets the background
    delivery thread finish the stage hooks a command's writes fired before the command ends."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        finally:
            from engine.delivery import drain

            drain()  # bounded (DELIVERY_DRAIN_TIMEOUT): what is left waits in the outbox

    def _load_plugin_commands(self):
        # Flask adds the `flask.commands` entry points to this group under their names (Flask-Migrate
        # had one named `db`), which would replace hookshop's own command of that name: ours win
        if self._loaded_plugin_commands:
            return
        own = dict(self.commands)
        super()._load_plugin_commands()
        self.commands.update(own)

    def list_commands(self, ctx):
        self._add_registered_commands(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._add_registered_commands(ctx)
            command = super().get_command(ctx, name)
        return command

    def _add_registered_commands(self, ctx):
        if getattr(self, "_registered_commands_added", False):
            return
        self._registered_commands_added = True
        try:
            app = ctx.ensure_object(ScriptInfo).load_app()
        except Exception:
            return
        from engine.plugins import collect

        for command in collect(app.extensions["hookshop"].pm, "register_commands"):
            self.add_command(command)


cli = HookshopGroup(create_app=_create_app, add_default_commands=False, add_version_option=False,
                    help="hookshop: a plugin-based headless commerce engine.")


@cli.command("init")
@with_appcontext
def init_command():
    """Create or upgrade the schema: run every migration (the core's and each plugin's; safe to run again)."""
    _upgrade_schema()
    click.echo(f"schema ready in {_db_name()}")


def _upgrade_schema(revision: str = "heads") -> None:
    from engine import schema
    from engine.errors import SchemaError

    try:
        notes = schema.upgrade(current_app._get_current_object(), revision)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    for note in notes:
        click.echo(note)


def _db_name() -> str:
    from engine.db import db

    return db.engine.url.render_as_string(hide_password=True)


@cli.command("demo")
@with_appcontext
def demo_command():
    """Load a demo shop: products, stock with serials, customers, orders in every stage."""
    from engine.demo import load_demo

    _upgrade_schema()
    summary = load_demo(progress=_progress)
    click.echo(summary)


def _progress(items, label):
    return click.progressbar(items, label=label, file=sys.stderr)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="worker threads of the WSGI server")
@click.option("--demo", is_flag=True, help="load demo data first (once)")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="server processes sharing the port; the first process supervises them (restarts one that "
                   "dies, stops them all on SIGTERM)")
@click.option("--listen-fd", type=int, hidden=True, help="(internal) serve this inherited listening socket")
@with_appcontext
def serve_command(host, port, threads, demo, workers, listen_fd):
    """Run the engine (API, its docs and the admin) on waitress, a production WSGI server."""
    import waitress

    from engine import jobs

    app = current_app._get_current_object()
    if listen_fd is None:  # a worker process of `--workers N` leaves the schema and the demo to its parent
        _upgrade_schema()
        if demo:
            from engine.demo import load_demo

            click.echo(load_demo(progress=_progress))
    if workers > 1:
        from engine.serve_processes import supervise

        click.echo(f"hookshop on http://{host}:{port}  ({workers} processes; admin: http://{host}:{port}/admin/, "
                   f"API docs: http://{host}:{port}/api/docs, database: {_db_name()}, stage hooks: "
                   f"{_jobs_mode(app)})")
        raise SystemExit(supervise(host, port, threads, workers))
    if not app.config.get("REDIS_URL"):
        jobs.sweep(app)  # embedded mode: retries of failed stage hooks run in this process
    # SIGTERM (a service manager's stop) ends like Ctrl-C: the atexit drain lets the delivery thread finish
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    structured_logs.configure(app)
    for info in app.extensions["hookshop"].infos:
        if not info.enabled:
            click.echo(f"plugin {info.name} is off: {info.reason}", err=True)
    if listen_fd is not None:
        import socket

        sock = socket.socket(fileno=listen_fd)
        waitress.serve(app, sockets=[sock], _quiet=True, **waitress_options(app, threads))
        return
    click.echo(f"hookshop on http://{host}:{port}  (admin: http://{host}:{port}/admin/, API docs: "
               f"http://{host}:{port}/api/docs, database: {_db_name()}, stage hooks: {_jobs_mode(app)})")
    waitress.serve(app, host=host, port=port, _quiet=True, **waitress_options(app, threads))


def waitress_options(app, threads: int = 8) -> dict:
    """waitress's adjustments for ``serve``: its request body limit is the app's ``MAX_CONTENT_LENGTH``.

    waitress refuses a body of ``max_request_body_size`` bytes or more (a 413 of its own, before the app
    sees the request or waitress buffers the body), Flask one of more than ``MAX_CONTENT_LENGTH``: hence the
    one byte, so that both accept exactly the same bodies."""
    return {"threads": threads, "ident": "hookshop", "max_request_body_size": app.config["MAX_CONTENT_LENGTH"] + 1}


def _exit_on_sigterm(_signum, _frame):
    raise SystemExit(0)


def _jobs_mode(app) -> str:
    return "rq (hookshop worker)" if app.config.get("REDIS_URL") else "background thread"


@cli.command("create-api-key")
@click.option("--name", required=True, help="who or what uses the key")
@click.option("--scopes", default="read,write", show_default=True, help="comma separated: read, write, admin")
@with_appcontext
def create_api_key_command(name, scopes):
    """Print a new API key (shown once) as the last line of stdout."""
    from engine.services import auth

    try:
        api_key, key = auth.create_api_key(name, [s.strip() for s in scopes.split(",") if s.strip()])
    except DomainError as exc:
        raise click.ClickException(f"{exc.message}. Example: --scopes read,write") from exc
    click.echo(f"API key #{api_key.id} '{name}' with scopes {api_key.scopes} (store it now: it is not shown again):")
    click.echo(key)


@cli.command("revoke-api-key")
@click.argument("key_id", type=int)
@with_appcontext
def revoke_api_key_command(key_id):
    """Revoke an API key by its id."""
    from engine.services import auth

    try:
        auth.revoke_api_key(key_id)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"API key #{key_id} revoked")


@cli.command("create-user")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "accounting", "warehouse", "customer_service",
                                                            "admin", "support"]),
              help="owner, accounting, warehouse or customer_service (docs/admin.md); admin and support are the "
                   "earlier names of owner and customer_service")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--locale", default="en", type=click.Choice(["en", "tr"]), show_default=True,
              help="the language of the user's admin")
@with_appcontext
def create_user_command(email, role, password_stdin, locale):
    """Create a staff user for the admin (log in at /admin/)."""
    from engine.services import staff

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        user = staff.create_user(email, role, password, locale=locale)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"user {user.email} ({user.role}) created")


@cli.group("plugins", invoke_without_command=True)
@click.pass_context
def plugins_group(ctx):
    """List discovered plugins, enabled or not, and their hooks (works before init); `hookshop plugins new`
    writes a new plugin."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(plugins_command)


@plugins_group.command("list")
@with_appcontext
def plugins_command():
    """List discovered plugins, enabled or not, their hooks and their settings (works before init).

    Each declared setting is shown with its current value (a secret's masked) or its default; the
    required settings that are not set are listed after them."""
    for info in current_app.extensions["hookshop"].infos:
        state = "enabled" if info.enabled else f"disabled ({info.reason})"
        origin = "core" if info.core else (info.version or "")
        click.echo(f"{info.name:<20} {state:<10} {info.module} {origin}".rstrip())
        click.echo(f"    hooks: {', '.join(info.hooks) or '-'}")
        found = info.as_dict(current_app.config)
        for row in found["settings"]:
            if row["set"]:
                shown = row["value"] + (f"  (not valid: {row['problem']})" if row["problem"] else "")
            else:
                shown = "(required, not set)" if row["required"] else \
                    f"(default: {row['default']})" if row["default"] else "(unset)"
            click.echo(f"    setting {row['name']} = {shown}")
        if found["missing_settings"]:
            click.echo(f"    missing: {', '.join(found['missing_settings'])}")


def _add_scaffold():
    from engine.scaffold import new_command

    plugins_group.add_command(new_command)


_add_scaffold()


@cli.command("worker")
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

    class ForkingWorker(Worker):
        def main_work_horse(self, job, queue):
            # rq forks a work horse per job: it must not reuse the pooled connections it
            # inherited (the sweeper thread uses them in the parent); close=False leaves them open there
            engine.dispose(close=False)
            return super().main_work_horse(job, queue)

    if with_sweeper and not burst:
        jobs.sweep(app)
    worker_class = ForkingWorker if fork else SimpleWorker
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


@cli.group("jobs")
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
@cli.command("relay")
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


@cli.command("outbox")
@click.option("--status", default="pending", type=click.Choice(["pending", "done", "dead"]), show_default=True)
@with_appcontext
def outbox_command(status):
    """List outbox events by status (failed plugins show their last error)."""
    from sqlalchemy import select

    from engine.db import db
    from engine.models import OutboxEvent

    rows = db.session.execute(select(OutboxEvent).where(OutboxEvent.status == status)
                              .order_by(OutboxEvent.id.desc()).limit(100)).scalars()
    for event in rows:
        click.echo(f"#{event.id} {event.hook} attempts={event.attempts} next={event.next_attempt_at} "
                   f"done={','.join(event.done_plugins or []) or '-'}")
        if event.last_error:
            click.echo("    " + event.last_error.splitlines()[0])


# ---------------------------------------------------------------------------------- schema migrations


@cli.group("db")
def db_group():
    """Schema migrations (Alembic through Flask-Migrate): the core's branch and each plugin's."""


def _schema_call(fn, *args, **kwargs):
    from engine.errors import SchemaError

    try:
        return fn(current_app._get_current_object(), *args, **kwargs)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc


@db_group.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade_command(revision):
    """Upgrade to REVISION (default `heads`: the core and every enabled plugin at its head).

    A database made before migrations existed is adopted first (its baselines are stamped).
    """
    _upgrade_schema(revision)
    click.echo(f"schema at {revision} in {_db_name()}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade_command(revision):
    """Revert to REVISION: `core@-1`, `<plugin>@base`, a revision id, or `base` (drops every table)."""
    from engine import schema

    for note in _schema_call(schema.downgrade, revision) or ["nothing to revert"]:
        click.echo(note)


@db_group.command("check")
def db_check_command():
    """Exit non-zero when the loaded models and the migrations (the database at head) differ."""
    from engine import schema

    problems = _schema_call(schema.differences)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{len(problems)} difference(s) between the models and the migrations: "
                                   "write a revision (`hookshop db revision -m ...`) or upgrade")
    click.echo("the models and the migrations agree")


@db_group.command("current")
def db_current_command():
    """The revision of each branch in the database."""
    from engine import schema

    for line in _schema_call(schema.current):
        click.echo(line)


@db_group.command("stamp")
@click.argument("revision")
def db_stamp_command(revision):
    """Record REVISION as applied without running it (for a database made by hand)."""
    from engine import schema

    _schema_call(schema.stamp, revision)
    click.echo(f"stamped {revision}")


@db_group.command("heads")
def db_heads_command():
    """The head revision of every branch."""
    from alembic import command

    from engine import schema

    command.heads(schema.alembic_config(current_app._get_current_object()), verbose=False)


@db_group.command("history")
def db_history_command():
    """Every revision of every branch, newest first."""
    from alembic import command

    from engine import schema

    command.history(schema.alembic_config(current_app._get_current_object()))


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="what the revision changes, e.g. 'refunds table'")
@click.option("--branch", default="core", show_default=True, help="core, or the name of the plugin that owns the tables")
@click.option("--autogenerate/--empty", default=True, show_default=True,
              help="write what the models have and the database at head has not (--empty: a blank revision)")
@click.option("--rev-id", default=None, help="the revision id (default NNNN_<branch>_<message>, 32 characters at most)")
def db_revision_command(message, branch, autogenerate, rev_id):
    """Write a new revision for developers; review it, then test it from the previous head."""
    from engine import schema

    path = _schema_call(schema.revision, message, branch, autogenerate=autogenerate, rev_id=rev_id)
    if path is None:
        click.echo("the models and the database agree: no revision written (--empty writes a blank one)")
        return
    click.echo(f"wrote {path}")
    click.echo("review it before you commit it: autogenerate does not see renames, CHECK constraints or triggers")


def _add_stock_commands():
    from engine.stock_commands import stock_group

    cli.add_command(stock_group)


_add_stock_commands()


def _add_coupon_commands():
    from engine.coupon_commands import coupons_group

    cli.add_command(coupons_group)


_add_coupon_commands()
def _add_purchase_order_commands():
    from engine.purchase_commands import purchase_orders_group

    cli.add_command(purchase_orders_group)


_add_purchase_order_commands()


def main():
    cli.main(prog_name="hookshop")


if __name__ == "__main__":
    main()
