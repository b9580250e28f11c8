"""The ``hookshop`` command (a Flask CLI group; also ``flask --app engine``)."""

from __future__ import annotations

import signal
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from engine import structured_logs
from engine.db_commands import _db_name, _upgrade_schema
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


def _add_command_groups():
    """The commands that live in modules of their own (each imports what it needs when it runs)."""
    from engine.coupon_commands import coupons_group
    from engine.db_commands import db_group
    from engine.purchase_commands import purchase_orders_group
    from engine.scaffold import new_command
    from engine.stock_commands import stock_group
    from engine.worker_commands import jobs_group, outbox_command, relay_command, tasks_group, worker_command

    plugins_group.add_command(new_command)
    for command in (worker_command, jobs_group, relay_command, outbox_command, tasks_group, db_group, stock_group,
                    coupons_group, purchase_orders_group):
        cli.add_command(command)


_add_command_groups()


def main():
    cli.main(prog_name="hookshop")


if __name__ == "__main__":
    main()
