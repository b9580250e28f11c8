"""Suppliers and purchase orders: create, change while draft, order, receive, close, cancel.

Drafts the engine makes itself (a backorder, a reorder rule crossing) go to the supplier's one open
draft (``draft_key`` ``supplier:<id>``) or, for a product without a supplier, to the product's own draft
(``product:<id>``): a new draft fires ``purchase_order_created``; a further shortfall adds to its line
(or adds a line). The unique ``draft_key`` is the database's guard against a second draft; the
draft's row lock orders the writers.

Receiving (``receive``) is one transaction in the engine's lock order: the lines' product rows (by
id) -> their stock levels -> the orders waiting on backorders (``stock.allocate_backorders``) -> the
reorder rules -> the purchase order's row. Concurrent receipts of one purchase order queue on the
product rows, so the second one sees what the first received: units beyond what was ordered are
recorded as ``over``, never lost.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from engine import signals
from engine.db import db, is_postgres, page_by_id, transaction, utcnow
from engine.domain import purchase_transitions as ptx
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import Product, PurchaseOrder, PurchaseOrderLine, Supplier

SUPPLIER_FIELDS = ("name", "email", "phone", "currency", "lead_time_days", "notes")


# --------------------------------------------------------------------------- suppliers


def create_supplier(data: dict) -> Supplier:
    with transaction():
        _unique_name(data["name"])
        supplier = Supplier(**{k: v for k, v in data.items() if k in SUPPLIER_FIELDS})
        supplier.lead_time_days = supplier.lead_time_days or 0
        db.session.add(supplier)
        _flush_name(data["name"])
        return supplier


def update_supplier(supplier_id: int, changes: dict) -> Supplier:
    with transaction():
        supplier = get_supplier(supplier_id, lock=True)
        if changes.get("name") and changes["name"] != supplier.name:
            _unique_name(changes["name"])
        for field in SUPPLIER_FIELDS:
            if field in changes:
                setattr(supplier, field, changes[field] if field != "lead_time_days" else changes[field] or 0)
        _flush_name(supplier.name)
        return supplier


def _unique_name(name: str) -> None:
    if db.session.execute(select(Supplier.id).where(Supplier.name == name)).first():
        raise Conflict(f"a supplier named {name!r} exists", errors={"name": ["already exists"]},
                       code="duplicate_supplier")


def _flush_name(name: str) -> None:
    try:
        db.session.flush()
    except IntegrityError:  # created a moment ago by a concurrent request
        raise Conflict(f"a supplier named {name!r} exists", errors={"name": ["already exists"]},
                       code="duplicate_supplier") from None


def get_supplier(supplier_id: int, *, lock: bool = False, field: str | None = None) -> Supplier:
    stmt = select(Supplier).where(Supplier.id == supplier_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    supplier = db.session.execute(stmt).scalar_one_or_none()
    if supplier is None:
        if field:  # named in a body: the request is wrong, not the path
            raise ValidationFailed(f"no supplier with id {supplier_id}", errors={field: ["no such supplier"]})
        raise NotFound(f"no supplier with id {supplier_id}")
    return supplier


def list_suppliers(limit: int = 50, cursor: int | None = None):
    return page_by_id(select(Supplier).order_by(Supplier.id.desc()), Supplier.id, limit, cursor)


# --------------------------------------------------------------------------- purchase orders


def get_purchase_order(po_id: int, *, lock: bool = False) -> PurchaseOrder:
    stmt = select(PurchaseOrder).where(PurchaseOrder.id == po_id)
    if lock:
        stmt = stmt.with_for_update(of=PurchaseOrder).execution_options(populate_existing=True)
    po = db.session.execute(stmt).unique().scalar_one_or_none()
    if po is None:
        raise NotFound(f"no purchase order with id {po_id}")
    return po


def find_by_number(number: str) -> PurchaseOrder | None:
    """The purchase order numbered ``PO-000123`` (what a scan resolves)."""
    return db.session.execute(select(PurchaseOrder).where(PurchaseOrder.number == number)).unique().scalar_one_or_none()


def list_purchase_orders(*, status=None, supplier_id=None, limit=50, cursor=None):
    stmt = select(PurchaseOrder).order_by(PurchaseOrder.id.desc())
    if status:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier_id:
        stmt = stmt.where(PurchaseOrder.supplier_id == supplier_id)
    return page_by_id(stmt, PurchaseOrder.id, limit, cursor)


def _number(po: PurchaseOrder) -> None:
    db.session.flush()
    if po.number is None:
        po.number = f"PO-{po.id:06d}"


def create_purchase_order(data: dict) -> PurchaseOrder:
    """A draft from the API. A supplier has one open draft: a second is a 409 naming the first."""
    with transaction():
        supplier_id = data.get("supplier_id")
        key = None
        if supplier_id is not None:
            get_supplier(supplier_id, field="supplier_id")
            key = f"supplier:{supplier_id}"
            _refuse_second_draft(key, supplier_id)
        po = PurchaseOrder(supplier_id=supplier_id, status=ptx.DRAFT, draft_key=key, notes=data.get("notes"),
                           reason=data.get("reason") or "created by staff", lines=[])
        db.session.add(po)
        _set_lines(po, data.get("lines") or [])
        try:
            _number(po)
        except IntegrityError:  # a draft for the supplier was made a moment ago
            raise Conflict("the supplier got a draft purchase order a moment ago: add lines to it",
                           code="draft_exists") from None
        return po


def _refuse_second_draft(key: str, supplier_id: int) -> None:
    existing = db.session.execute(select(PurchaseOrder.id, PurchaseOrder.number)
                                  .where(PurchaseOrder.draft_key == key)).first()
    if existing:
        raise Conflict(f"supplier {supplier_id} has an open draft purchase order, {existing.number}: add lines to "
                       f"it (PATCH /purchase-orders/{existing.id})",
                       errors={"supplier_id": [f"open draft {existing.number}"]}, code="draft_exists")


def _set_lines(po: PurchaseOrder, lines: list[dict]) -> None:
    """Upsert the lines by sku; quantity 0 removes a line."""
    seen = set()
    by_product = {line.product_id: line for line in po.lines}
    for index, item in enumerate(lines):
        sku = item["sku"]
        if sku in seen:
            raise ValidationFailed(f"{sku} is on two lines", errors={"lines": {str(index): {"sku": ["repeated"]}}})
        seen.add(sku)
        product = db.session.execute(select(Product).where(Product.sku == sku)).scalar_one_or_none()
        if product is None:
            raise ValidationFailed(f"unknown sku {sku!r}",
                                   errors={"lines": {str(index): {"sku": [f"unknown sku {sku!r}"]}}})
        line = by_product.get(product.id)
        if item["quantity"] == 0:
            if line is not None:
                po.lines.remove(line)
            continue
        if line is None:
            line = PurchaseOrderLine(product=product, product_id=product.id, quantity=0, received=0, damaged=0,
                                     short=0, over=0)
            po.lines.append(line)
        line.quantity = item["quantity"]
        if "unit_cost" in item:
            line.unit_cost = item["unit_cost"]
        line.recount()


def update_purchase_order(po_id: int, changes: dict) -> PurchaseOrder:
    """Change a draft: its lines (by sku; quantity 0 removes one), notes, supplier."""
    with transaction():
        po = get_purchase_order(po_id, lock=True)
        ptx.check(po.label, po.status, "edit")
        if "supplier_id" in changes and changes["supplier_id"] != po.supplier_id:
            supplier_id = changes["supplier_id"]
            if supplier_id is not None:
                get_supplier(supplier_id, field="supplier_id")
                _refuse_second_draft(f"supplier:{supplier_id}", supplier_id)
            po.supplier_id = supplier_id
            po.draft_key = f"supplier:{supplier_id}" if supplier_id is not None else None
        if "notes" in changes:
            po.notes = changes["notes"]
        _set_lines(po, changes.get("lines") or [])
        try:
            db.session.flush()
        except IntegrityError:
            raise Conflict("the supplier got a draft purchase order a moment ago", code="draft_exists") from None
        return po


def act(po_id: int, action: str) -> PurchaseOrder:
    """``order``, ``close`` or ``cancel`` (the transition table decides; a refused one is a 409). Cancel is
    only in the table for draft and ordered: the first receipt (even of damaged units only) leaves ordered."""
    with transaction():
        po = get_purchase_order(po_id, lock=True)
        (target,) = ptx.check(po.label, po.status, action)
        if action == "order" and not any(line.quantity > 0 for line in po.lines):
            raise ValidationFailed(f"{po.number} has no lines: add some before ordering it",
                                   errors={"lines": ["at least one line is required"]})
        po.status, po.draft_key = target, None
        now = utcnow()
        if action == "order":
            po.ordered_at = now
        else:
            po.closed_at = now
        return po


def expected_units(product_id: int) -> int:
    """Units of the product still expected on open purchase orders (drafts included)."""
    value = db.session.execute(select(func.coalesce(func.sum(PurchaseOrderLine.short), 0)).join(PurchaseOrder)
                               .where(PurchaseOrderLine.product_id == product_id,
                                      PurchaseOrder.status.in_(ptx.OPEN))).scalar_one()
    return int(value or 0)


# --------------------------------------------------------------------------- automatic drafts


def add_to_draft(product: Product, quantity: int, reason: str, supplier_id: int | None = None,
                 minimum: int = 0) -> PurchaseOrder:
    """Put ``quantity`` of ``product`` on the open draft of its supplier (``supplier_id``, else the
    product-wide reorder rule's), or of the product when it has none; the draft is made if missing and
    then fires ``purchase_order_created``. A new line is for at least ``minimum`` units. The caller holds
    the product's levels; the rules and then the draft are locked here (engine lock order)."""
    from engine.services import reorder

    if supplier_id is None:
        reorder.lock_rules([product.id])
        supplier_id = reorder.supplier_of(None, product)
    key = f"supplier:{supplier_id}" if supplier_id is not None else f"product:{product.id}"
    po, created = _lock_draft(key, supplier_id, reason)
    line = next((ln for ln in po.lines if ln.product_id == product.id), None)
    if line is None:
        line = PurchaseOrderLine(product=product, product_id=product.id, quantity=max(quantity, minimum),
                                 received=0, damaged=0, short=0, over=0, unit_cost=product.unit_cost)
        po.lines.append(line)
    else:
        line.quantity += quantity
    line.recount()
    db.session.flush()
    if created:
        signals.stock_event.send(product, hook="purchase_order_created", payload={
            "purchase_order_id": po.id, "quantity": line.quantity, "reason": reason, "number": po.number,
            "supplier_id": supplier_id, "sku": product.sku})
    return po


def _lock_draft(key: str, supplier_id: int | None, reason: str) -> tuple[PurchaseOrder, bool]:
    """The draft of ``key`` under its row lock, made when there is none: (draft, made now)."""
    insert = postgresql.insert if is_postgres() else sqlite.insert
    stmt = select(PurchaseOrder).where(PurchaseOrder.draft_key == key).with_for_update(of=PurchaseOrder) \
        .execution_options(populate_existing=True)
    for _ in range(3):  # a draft ordered a moment ago leaves no draft: make one
        po = db.session.execute(stmt).unique().scalar_one_or_none()
        if po is not None:
            return po, False
        made = db.session.execute(insert(PurchaseOrder).values(
            supplier_id=supplier_id, status=ptx.DRAFT, draft_key=key, reason=reason[:200], created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["draft_key"]).returning(PurchaseOrder.id)).scalar_one_or_none()
        if made is not None:
            po = db.session.execute(stmt).unique().scalar_one()
            po.number = f"PO-{po.id:06d}"
            return po, True
    raise Conflict("the draft purchase order changed under this request: try again", code="draft_busy")
