"""Returns (RMA): customer service's actions, and the customer's own request for headless storefronts.

Every action is a transition of ``engine.domain.return_transitions`` and answers 200 with the return; a
wrong one is a 409 naming the allowed next actions and changes nothing.
"""

from __future__ import annotations

from engine.api import Blueprint, idempotent, public
from engine.api import serialize as out
from engine.api.schemas import (
    CustomerReturnIn,
    CustomerReturnOut,
    ReceiveReturnIn,
    RejectReturnIn,
    ReturnIn,
    ReturnOut,
)
from engine.services import return_receipts, returns

blp = Blueprint("returns", __name__, url_prefix="/api/v1", description="Returns (RMA): request, approve or reject, "
                "receive, resolve")

_WRONG = "illegal_transition: the message names the allowed next actions (return_closed: received already)"


@blp.route("/orders/<int:order_id>/returns", methods=["POST"])
@blp.arguments(ReturnIn)
@blp.alt_response(201, schema=ReturnOut, success=True, description="the return: approved at once unless "
                  "RETURNS_REQUIRE_APPROVAL is on (then requested)")
@blp.alt_response(409, schema="Error", description="not_returnable (the order is not shipped yet), "
                  "serial_already_returned (naming the serials)")
@blp.alt_response(404, schema="Error", description="no such order")
@idempotent
def open_return(data, order_id):
    """Open a return (resolution: refund or exchange; serials of tracked units as shipped)"""
    return out.order_return(returns.open_return(order_id, data["lines"], data["reason"], data["resolution"])), 201


@blp.route("/returns/<int:return_id>")
@blp.alt_response(200, schema=ReturnOut, success=True, description="the return")
@blp.alt_response(404, schema="Error", description="no such return")
def get_return(return_id):
    """Get a return"""
    return out.order_return(returns.get_return(return_id))


@blp.route("/returns/<int:return_id>/approve", methods=["POST"])
@blp.alt_response(200, schema=ReturnOut, success=True, description="the approved return")
@blp.alt_response(409, schema="Error", description=_WRONG)
@blp.alt_response(404, schema="Error", description="no such return")
def approve_return(return_id):
    """Approve a requested return: its serial units become returned (on their way back)"""
    return out.order_return(returns.approve_return(return_id))


@blp.route("/returns/<int:return_id>/reject", methods=["POST"])
@blp.arguments(RejectReturnIn)
@blp.alt_response(200, schema=ReturnOut, success=True, description="the rejected return")
@blp.alt_response(409, schema="Error", description=_WRONG)
@blp.alt_response(404, schema="Error", description="no such return")
def reject_return(data, return_id):
    """Reject a requested (or approved, never received) return, with the reason"""
    return out.order_return(returns.reject_return(return_id, data["reason"]))


@blp.route("/returns/<int:return_id>/receive", methods=["POST"])
@blp.arguments(ReceiveReturnIn)
@blp.alt_response(200, schema=ReturnOut, success=True, description="the return: resolved, or received while "
                  "its refund is made")
@blp.alt_response(409, schema="Error", description=_WRONG + "; refund_exceeds_refundable, refund_in_progress")
@blp.alt_response(404, schema="Error", description="no such return")
@blp.alt_response(502, schema="Error", description="the provider failed the refund: the return stays received "
                  "(POST /returns/{id}/resolve retries it)")
def receive_return(data, return_id):
    """Receive an approved return: units to stock or quarantine, then refund or place the replacement order"""
    return out.order_return(return_receipts.receive_return(
        return_id, data.get("location"), data["restock"], data.get("lines"), data.get("refund_amount")))


@blp.route("/returns/<int:return_id>/resolve", methods=["POST"])
@blp.alt_response(200, schema=ReturnOut, success=True, description="the resolved return")
@blp.alt_response(409, schema="Error", description=_WRONG + "; refund_in_progress")
@blp.alt_response(404, schema="Error", description="no such return")
@blp.alt_response(502, schema="Error", description="the provider failed the refund again")
def resolve_return(return_id):
    """Retry the refund of a received return whose refund failed at the provider"""
    return out.order_return(return_receipts.resolve_return(return_id))


@blp.route("/returns/requests", methods=["POST"])
@blp.arguments(CustomerReturnIn)
@blp.doc(security=[])
@blp.alt_response(201, schema=CustomerReturnOut, success=True, description="the request, waiting for approval")
@blp.alt_response(404, schema="Error", description="order_not_found: no order with that number and e-mail "
                  "(never says which part was wrong)")
@blp.alt_response(409, schema="Error", description="not_returnable, serial_already_returned")
@public
def request_return(data):
    """A customer asks for a return (no API key: the order number and its e-mail are checked)"""
    order_return = returns.request_return(data["order_number"], data["email"], data["lines"], data["reason"],
                                          data["resolution"])
    return out.customer_return(order_return, data["order_number"].strip()), 201
