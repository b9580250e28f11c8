"""Customer profiles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from engine.api import Blueprint
from engine.api import serialize as out
from engine.api.schemas import CustomerOut
from engine.db import db
from engine.errors import NotFound
from engine.models import Customer, Order

blp = Blueprint("customers", __name__, url_prefix="/api/v1", description="Customer profiles")


@blp.route("/customers/<int:customer_id>")
@blp.alt_response(200, schema=CustomerOut, success=True, description="profile with the last 50 orders")
@blp.alt_response(404, schema="Error", description="no such customer")
def get_customer(customer_id):
    """A customer's profile: history, order_count, total_spent, preferences, vip"""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    history = db.session.execute(select(Order).where(Order.customer_id == customer_id)
                                 .order_by(Order.id.desc()).limit(50)
                                 .options(selectinload(Order.flag_rows))).scalars().all()
    return out.customer(customer, history)
