"""The dashboard: orders per stage, today's sales per channel, low stock, special orders needing attention
(review flags, VIP, gift, replacement), failed background work. A live region."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, or_, select

from engine import outbox
from engine.admin import live
from engine.admin.blueprint import bp
from engine.admin.permissions import require
from engine.db import db
from engine.domain.transitions import STATUSES
from engine.models import Order, OrderFlag, StockAlert

ATTENTION_FLAGS = ("vip", "gift", "replacement")
OPEN = ("placed", "paid", "on_hold", "picking", "picked", "confirmed", "packed")


def _today_start() -> datetime:
    from engine.db import utcnow

    now = utcnow()
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


def summary() -> dict:
    per_status = dict(db.session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
    start = _today_start()
    sales = db.session.execute(
        select(Order.channel, Order.currency, func.count(), func.sum(Order.total))
        .where(Order.created_at >= start, Order.created_at < start + timedelta(days=1), Order.status != "cancelled")
        .group_by(Order.channel, Order.currency).order_by(Order.channel, Order.currency)).all()
    attention = db.session.execute(
        select(OrderFlag.flag, func.count()).join(Order, Order.id == OrderFlag.order_id)
        .where(Order.status.in_(OPEN), or_(OrderFlag.flag.like("review:%"), OrderFlag.flag.in_(ATTENTION_FLAGS)))
        .group_by(OrderFlag.flag).order_by(OrderFlag.flag)).all()
    alerts = db.session.execute(
        select(StockAlert).order_by(StockAlert.id.desc()).limit(10)).scalars().all()
    dead = outbox.dead_count()
    failed_jobs = _failed_jobs()
    return {"per_status": [(s, per_status.get(s, 0)) for s in STATUSES], "sales": sales, "attention": attention,
            "alerts": alerts, "dead_events": dead, "failed_jobs": failed_jobs}


def _failed_jobs() -> int | None:
    """Failed rq jobs (production mode), None without Redis."""
    if not current_app.config.get("REDIS_URL"):
        return None
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue

    config = current_app.config
    names = [config.get("QUEUE") or "hookshop", *(config.get("JOB_QUEUES") or [])]
    try:
        connection = Redis.from_url(config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
        return sum(Queue(name, connection=connection).failed_job_registry.count for name in names)
    except RedisError:  # Redis down: the dashboard still shows the rest (and /healthz says so)
        return None


@bp.route("/")
@require("dashboard.view")
def dashboard():
    """The dashboard (live)."""
    return live.region("admin/dashboard.html", summary)


@bp.route("/dashboard/live")
@require("dashboard.view")
def dashboard_live():
    return live.region("admin/_dashboard_live.html", summary)
