"""``/api/v1/crm/salesforce/...``: the sync status of every mirrored record (filter by status and kind), one
record, and staff's retry of a record (it waits again; the periodic sweep pushes it within seconds: no
Salesforce call is made in the request)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import RAISE, fields, validate

from engine.plugin_api import Blueprint, NotFound, Strict, as_utc, db, end_read, page_by_id, query_integer

from . import sync
from .models import KINDS, STATUSES, SyncRecord

blp = Blueprint("crm_salesforce", __name__, url_prefix="/api/v1/crm/salesforce",
                description="crm_salesforce: customers and orders mirrored to Salesforce, their sync status")


class CrmSyncQuery(Strict):
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.OneOf(KINDS))
    hookshop_id = query_integer(metadata={"description": "the customer's (account, contact) or order's id"})
    limit = query_integer(1, 500, load_default=50)
    cursor = query_integer(metadata={"description": "the previous page's next_cursor"})


class CrmSyncOut(Strict):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "account, contact or order"})
    hookshop_id = fields.Integer()
    sobject = fields.String(metadata={"description": "Contact, Account, Order or Opportunity"})
    status = fields.String(metadata={"description": "pending (waits for a push), synced, or error (refused by "
                                                    "Salesforce for this record; retried when it changes)"})
    attempts = fields.Integer()
    error_code = fields.String(allow_none=True, metadata={"description": "Salesforce's code, e.g. "
                                                          "REQUIRED_FIELD_MISSING, REQUEST_LIMIT_EXCEEDED"})
    last_error = fields.String(allow_none=True)
    salesforce_id = fields.String(allow_none=True)
    version = fields.Integer()
    marked_at = fields.String()
    synced_at = fields.String(allow_none=True)


class CrmSyncPage(Strict):
    items = fields.List(fields.Nested(CrmSyncOut))
    next_cursor = fields.Integer(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "records per status (all of them, not only this page)"})


def _iso(value):
    return as_utc(value).isoformat() if value is not None else None


def record_out(row: SyncRecord) -> dict:
    return {"id": row.id, "kind": row.kind, "hookshop_id": row.hookshop_id, "sobject": row.sobject,
            "status": row.status, "attempts": row.attempts, "error_code": row.error_code,
            "last_error": row.last_error, "salesforce_id": row.salesforce_id, "version": row.version,
            "marked_at": _iso(row.marked_at), "synced_at": _iso(row.synced_at)}


def list_records(*, status=None, kind=None, hookshop_id=None, limit=50, cursor=None):
    from sqlalchemy import select

    stmt = select(SyncRecord).order_by(SyncRecord.id.desc())
    if status:
        stmt = stmt.where(SyncRecord.status == status)
    if kind:
        stmt = stmt.where(SyncRecord.kind == kind)
    if hookshop_id is not None:
        stmt = stmt.where(SyncRecord.hookshop_id == hookshop_id)
    return page_by_id(stmt, SyncRecord.id, limit, cursor)


@blp.route("/sync")
class CrmSyncRecords(MethodView):
    @blp.arguments(CrmSyncQuery, location="query", unknown=RAISE)
    @blp.alt_response(200, schema=CrmSyncPage, success=True, description="newest first, cursor paginated")
    def get(self, query):
        """List the sync status of the mirrored records (filter by status, kind, hookshop id)"""
        items, next_cursor = list_records(status=query.get("status"), kind=query.get("kind"),
                                          hookshop_id=query.get("hookshop_id"), limit=query["limit"],
                                          cursor=query.get("cursor"))
        result = {"items": [record_out(row) for row in items], "next_cursor": next_cursor, "counts": sync.counts()}
        end_read()
        return result


def _get(record_id: int) -> SyncRecord:
    row = db.session.get(SyncRecord, record_id)
    if row is None:
        raise NotFound(f"no sync record with id {record_id}")
    return row


@blp.route("/sync/<int:record_id>")
@blp.alt_response(200, schema=CrmSyncOut, success=True, description="the record's sync status")
@blp.alt_response(404, schema="Error", description="no such record")
def crm_sync_record(record_id):
    """One record's sync status"""
    return record_out(_get(record_id))


@blp.route("/sync/<int:record_id>/retry", methods=["POST"])
@blp.alt_response(200, schema=CrmSyncOut, success=True,
                  description="the record, pending again: the periodic sweep pushes it within seconds")
@blp.alt_response(404, schema="Error", description="no such record")
def crm_sync_retry(record_id):
    """Push a record again (after fixing what Salesforce refused)"""
    row = sync.retry(record_id)
    if row is None:
        raise NotFound(f"no sync record with id {record_id}")
    return record_out(_get(record_id))
