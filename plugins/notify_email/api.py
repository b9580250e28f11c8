"""``GET /api/v1/notifications``: the messages, newest first, by order and status, cursor paginated."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE, fields, validate
from sqlalchemy import select

from engine.plugin_api import Blueprint, Strict, as_utc, end_read, page_by_id, query_integer

from .models import STATUSES, Message

blp = Blueprint("notify_email", __name__, url_prefix="/api/v1", description="notify_email: the e-mails sent")


class NotificationQuery(Strict):
    order = query_integer(metadata={"description": "an order id"})
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = query_integer(1, 500, load_default=50)
    cursor = fields.String(validate=[validate.Length(max=18),
                                     validate.Regexp(r"^[0-9]{1,18}$", error="use the previous page's next_cursor")])


class NotificationOut(Strict):
    id = fields.Integer()
    to = fields.String()
    template = fields.String()
    language = fields.String()
    status = fields.String(metadata={"description": "queued, sent, failed (retried later) or dead"})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    event_key = fields.String(metadata={"description": "<outbox event id>:<template>:<recipient>, unique"})
    hook = fields.String()
    order_id = fields.Integer(allow_none=True)
    subject = fields.String(allow_none=True, metadata={"description": "set once sent"})
    next_attempt_at = fields.String(allow_none=True)
    created_at = fields.String()
    sent_at = fields.String(allow_none=True)


class NotificationPage(Strict):
    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)


def _iso(value):
    return as_utc(value).isoformat() if value is not None else None


def message_out(message: Message) -> dict:
    return {"id": message.id, "to": message.recipient, "template": message.template, "language": message.language,
            "status": message.status, "attempts": message.attempts, "last_error": message.last_error,
            "event_key": message.event_key, "hook": message.hook, "order_id": message.order_id,
            "subject": message.subject,
            "next_attempt_at": _iso(message.next_attempt_at) if message.status in ("queued", "failed") else None,
            "created_at": _iso(message.created_at), "sent_at": _iso(message.sent_at)}


def list_messages(*, order=None, status=None, limit=50, cursor=None) -> tuple[list[Message], int | None]:
    stmt = select(Message).order_by(Message.id.desc())
    if order is not None:
        stmt = stmt.where(Message.order_id == order)
    if status:
        stmt = stmt.where(Message.status == status)
    return page_by_id(stmt, Message.id, limit, cursor)


@blp.route("/notifications")
class Notifications(MethodView):
    @blp.arguments(NotificationQuery, location="query", unknown=RAISE)
    @blp.alt_response(200, schema=NotificationPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List the e-mails (filter by order and status)"""
        items, next_cursor = list_messages(order=query.get("order"), status=query.get("status"),
                                           limit=query["limit"],
                                           cursor=int(query["cursor"]) if query.get("cursor") else None)
        end_read()
        return {"items": [message_out(m) for m in items], "next_cursor": str(next_cursor) if next_cursor else None}
