"""Domain errors. They carry a snake_case code, an HTTP status and field errors;
the API maps them to ``{"code", "message", "errors"}`` once, in engine/api."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, errors: dict | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        if code:
            self.code = code


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, status: str, action: str, allowed: list[str]):
        allowed_text = ", ".join(allowed) if allowed else "none (the order is final)"
        super().__init__(
            f"cannot {action} an order that is {status}; allowed next actions: {allowed_text}",
            errors={"status": [status], "allowed_actions": allowed},
        )
        self.allowed = allowed


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class PaymentFailed(DomainError):
    status = 402
    code = "payment_failed"


class ProviderUnavailable(DomainError):
    status = 502
    code = "provider_unavailable"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class PluginError(Exception):
    """A plugin cannot be loaded (unknown hook, broken entry point)."""


class SchemaError(Exception):
    """The database schema cannot be migrated as asked (unknown revisions, a half-adopted database)."""
