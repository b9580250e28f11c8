"""The retry queue's screen (owner only, ``/admin/tasks``): how many tasks of each kind wait, run, are done or
dead; the tasks themselves, dead first, with their attempts and last error; and a requeue button per dead
task and per kind. The same facts and actions as ``hookshop tasks`` and ``hookshop tasks requeue``."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from engine import retry_queue
from engine.admin.blueprint import bp
from engine.admin.custret import PAGE, cursor_arg
from engine.admin.menu import entry
from engine.admin.permissions import require
from engine.db import db
from engine.domain.privacy import redact_text
from engine.models.retry import RetryTask

STATUS_LABELS = {"dead": _l("Dead"), "pending": _l("Waiting"), "running": _l("Running"), "done": _l("Done")}


@bp.route("/tasks")
@require("tasks.view")
def tasks():
    status = request.args.get("status", "dead" if "status" not in request.args else "")
    status = status if status in STATUS_LABELS else ""
    kind = request.args.get("kind", "")[:64]
    stmt = select(RetryTask).order_by(RetryTask.id.desc())
    if status:
        stmt = stmt.where(RetryTask.status == status)
    if kind:
        stmt = stmt.where(RetryTask.kind == kind)
    cursor = cursor_arg(request.args.get("cursor"))
    if cursor:
        stmt = stmt.where(RetryTask.id < cursor)
    rows = list(db.session.execute(stmt.limit(PAGE + 1)).scalars())
    counts = retry_queue.counts()
    kinds = sorted(set(counts) | set(retry_queue.task_kinds()))
    return render_template("admin/tasks.html", tasks=rows[:PAGE], counts=counts, kinds=kinds, status=status,
                           kind=kind, statuses=STATUS_LABELS, redact=redact_text,
                           next_cursor=rows[PAGE - 1].id if len(rows) > PAGE else None)


@bp.route("/tasks/requeue", methods=["POST"])
@require("tasks.requeue")
def requeue_tasks():
    """Requeue one dead task (``task_id``) or every dead task of a kind (``kind``)."""
    task_id = cursor_arg(request.form.get("task_id"))
    kind = (request.form.get("kind") or "")[:64]
    if task_id:
        count = retry_queue.requeue([task_id], dead_only=True)
    elif kind:
        count = retry_queue.requeue(kind=kind, dead_only=True)
    else:
        count = 0
    if count:
        flash(_("%(count)s task(s) requeued: they run again within a minute.", count=count), "success")
    else:
        flash(_("Nothing to requeue: the task is not dead (any more)."), "error")
    return redirect(url_for("admin_ui.tasks", status=request.form.get("status", "dead"),
                            kind=request.form.get("filter_kind", "")), 303)


entry(_l("Retry queue"), "admin_ui.tasks", "tasks.view", 87)
