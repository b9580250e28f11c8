"""API key management (admin scope)."""

from __future__ import annotations

import marshmallow as ma
from sqlalchemy import select

from engine.api import Blueprint, idempotent
from engine.api.schemas import Strict
from engine.db import as_utc, db
from engine.models import ApiKey
from engine.services import auth

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="API keys (admin scope)")


class ApiKeyIn(Strict):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    scopes = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(auth.SCOPES)), required=True,
                            validate=ma.validate.Length(min=1, max=10))


class ApiKeyOut(Strict):
    id = ma.fields.Integer()
    name = ma.fields.String()
    prefix = ma.fields.String()
    scopes = ma.fields.List(ma.fields.String())
    created_at = ma.fields.String()
    revoked_at = ma.fields.String(allow_none=True)
    key = ma.fields.String(metadata={"description": "the key itself: only in the answer to its creation"})


def _key(api_key: ApiKey) -> dict:
    return {"id": api_key.id, "name": api_key.name, "prefix": api_key.prefix, "scopes": api_key.scopes.split(","),
            "created_at": as_utc(api_key.created_at).isoformat(),
            "revoked_at": as_utc(api_key.revoked_at).isoformat() if api_key.revoked_at else None}


@blp.route("/api-keys", methods=["GET"])
@blp.alt_response(200, schema=ApiKeyOut(many=True), success=True, description="every key (never the key itself)")
def list_keys():
    """List API keys"""
    return [_key(k) for k in db.session.execute(select(ApiKey).order_by(ApiKey.id)).scalars()]


@blp.route("/api-keys", methods=["POST"])
@blp.arguments(ApiKeyIn)
@blp.alt_response(201, schema=ApiKeyOut, success=True, description="the new key, shown this once")
@idempotent
def create_key(data):
    """Create an API key (the key is in this answer only)"""
    api_key, key = auth.create_api_key(data["name"], data["scopes"])
    return {**_key(api_key), "key": key}, 201


@blp.route("/api-keys/<int:key_id>/revoke", methods=["POST"])
@blp.alt_response(200, schema=ApiKeyOut, success=True, description="the revoked key")
@blp.alt_response(404, schema="Error", description="no such key")
def revoke_key(key_id):
    """Revoke an API key: it stops working at once"""
    return _key(auth.revoke_api_key(key_id))
