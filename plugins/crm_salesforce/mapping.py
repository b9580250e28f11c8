"""What Salesforce should hold for a hookshop record: the mapped fields of a Contact, an Account (B2B
customers: a company name) and an Order or Opportunity.

Each kind has default fields (``DEFAULTS``: hookshop field -> Salesforce field API name). The mapping file
(``HOOKSHOP_SALESFORCE_MAPPING``) overrides them per kind: ``{"order": {"tracking_number": "Tracking__c",
"channel": null}}`` renames one field and leaves another out (``false`` in TOML, which has no null); ``"opportunity_stages"`` maps a hookshop order
status to an Opportunity's ``StageName``. Money is sent in major units (``1999`` EUR cents -> ``19.99``),
dates as ``YYYY-MM-DD``. Reading only: the payload is built inside the stage hook's transaction, sent later.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from engine.plugin_api import Customer, Order, Shipment, amount_text, as_utc, db

from .settings import Settings

# hookshop field -> Salesforce field (the external id field is added by the plugin, from its setting)
DEFAULTS: dict[str, dict[str, str]] = {
    "contact": {
        "first_name": "FirstName", "last_name": "LastName", "email": "Email", "phone": "Phone",
        "street": "MailingStreet", "city": "MailingCity", "postal_code": "MailingPostalCode",
        "country": "MailingCountry", "vip": "Hookshop_VIP__c", "order_count": "Hookshop_Order_Count__c",
        "total_spent": "Hookshop_Total_Spent__c", "account": "Account",
    },
    "account": {
        "name": "Name", "tax_id": "Hookshop_Tax_Id__c", "street": "BillingStreet", "city": "BillingCity",
        "postal_code": "BillingPostalCode", "country": "BillingCountry",
    },
    "order": {
        "number": "Name", "placed_on": "EffectiveDate", "salesforce_status": "Status", "account": "Account",
        "contact": "BillToContact", "status": "Hookshop_Status__c", "total": "Hookshop_Total__c",
        "currency": "Hookshop_Currency__c", "channel": "Hookshop_Channel__c", "vip": "Hookshop_VIP__c",
        "gift": "Hookshop_Gift__c", "replacement": "Hookshop_Replacement__c",
        "tracking_number": "Hookshop_Tracking_Number__c", "estimated_delivery": "Hookshop_Estimated_Delivery__c",
    },
    "opportunity": {
        "number": "Name", "placed_on": "CloseDate", "stage": "StageName", "total": "Amount", "account": "Account",
        "contact": "Contact", "status": "Hookshop_Status__c", "currency": "Hookshop_Currency__c",
        "channel": "Hookshop_Channel__c", "vip": "Hookshop_VIP__c", "gift": "Hookshop_Gift__c",
        "replacement": "Hookshop_Replacement__c", "tracking_number": "Hookshop_Tracking_Number__c",
        "estimated_delivery": "Hookshop_Estimated_Delivery__c",
    },
}
# hookshop order status -> Opportunity StageName (the standard picklist's values)
DEFAULT_STAGES = {"cancelled": "Closed Lost", "delivered": "Closed Won", "completed": "Closed Won"}
OPEN_STAGE = "Negotiation/Review"
# the value of an Order's standard Status picklist: hookshop's own status goes to Hookshop_Status__c, since an
# Order is only "Activated" with order products, which the plugin does not write
ORDER_STATUS = "Draft"
# the Contact field that ``hookshop crm pull`` reads back into the customer profile
VIP_FIELD = ("contact", "vip")


def check_mapping(data) -> str | None:
    """A sentence when the mapping file's content is not ``{kind: {hookshop field: name or null}}``."""
    if not isinstance(data, dict):
        return "must be a table of kinds (contact, account, order, opportunity, opportunity_stages)"
    for kind, fields in data.items():
        if kind == "opportunity_stages":
            if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
                return "opportunity_stages must map hookshop statuses to StageName values"
            continue
        if kind not in DEFAULTS:
            return f"unknown kind {kind!r}; kinds: {', '.join(DEFAULTS)}, opportunity_stages"
        if not isinstance(fields, dict):
            return f"{kind} must be a table of hookshop field = Salesforce field"
        for name, target in fields.items():
            if name not in DEFAULTS[kind]:
                return f"{kind}.{name} is not a field hookshop writes; fields: {', '.join(DEFAULTS[kind])}"
            if target is not None and target is not False and (not isinstance(target, str) or not target.replace("_", "").isalnum()):
                return f"{kind}.{name} must be a Salesforce field's API name, or null (false in TOML) to leave it out"
    return None


def field_map(settings: Settings, kind: str) -> dict[str, str]:
    """hookshop field -> Salesforce field of a kind, the mapping file applied (null removes a field)."""
    merged = {**DEFAULTS[kind], **(settings.mapping.get(kind) or {})}
    return {name: target for name, target in merged.items() if target}


def sobject(settings: Settings, kind: str) -> str:
    return {"contact": "Contact", "account": "Account"}.get(kind, settings.order_object)


def _money(amount: int, currency: str) -> float:
    # a JSON number in major units; exact for any amount below 2**53 minor units
    return float(Decimal(amount_text(amount, currency)))


def _split_name(name: str) -> tuple[str | None, str]:
    first, _, last = (name or "").strip().rpartition(" ")
    return (first or None), (last or name or "(no name)")


def _address(address: dict | None) -> dict:
    address = address or {}
    street = "\n".join(p for p in (address.get("line1"), address.get("line2")) if p)
    return {"street": street or None, "city": address.get("city"), "postal_code": address.get("postal_code"),
            "country": address.get("country")}


def _apply(settings: Settings, kind: str, external_id: str, values: dict) -> dict:
    fields = field_map(settings, kind)
    payload: dict = {settings.external_id: external_id}
    for name, value in values.items():
        target = fields.get(name)
        if target is None:
            continue
        if isinstance(value, _Ref):  # a relationship by external id: {"Account": {"Hookshop_Id__c": "12"}}
            payload[target] = {settings.external_id: value.external_id}
        elif isinstance(value, _Id):  # a plain lookup by Salesforce id
            payload[_id_field(target)] = value.salesforce_id
        else:
            payload[target] = value
    return payload


def _id_field(relationship: str) -> str:
    """The lookup field of a relationship name: ``Account`` -> ``AccountId``, ``Company__r`` -> ``Company__c``."""
    if relationship.endswith("__r"):
        return relationship[:-3] + "__c"
    return relationship if relationship.endswith("Id") else relationship + "Id"


class _Ref:
    def __init__(self, external_id: str):
        self.external_id = external_id


class _Id:
    def __init__(self, salesforce_id: str):
        self.salesforce_id = salesforce_id


def has_account(customer: Customer) -> bool:
    """B2B customers (a company name) get an Account of their own."""
    return bool((customer.company or "").strip())


def account_payload(settings: Settings, customer: Customer) -> dict | None:
    if not has_account(customer):
        return None
    values = {"name": (customer.company or "").strip(), "tax_id": customer.tax_id,
              **_address(customer.billing_address or ((customer.addresses or [None])[0]))}
    return _apply(settings, "account", str(customer.id), values)


def contact_payload(settings: Settings, customer: Customer) -> dict:
    first, last = _split_name(customer.name)
    currency = customer.currency or "EUR"
    values = {"first_name": first, "last_name": last, "email": customer.email, "phone": customer.phone,
              **_address((customer.addresses or [None])[0]), "vip": bool(customer.is_vip),
              "order_count": int(customer.order_count or 0),
              "total_spent": _money(int(customer.total_spent or 0), currency)}
    if has_account(customer):
        values["account"] = _Ref(str(customer.id))
    elif settings.default_account_id:
        values["account"] = _Id(settings.default_account_id)
    return _apply(settings, "contact", str(customer.id), values)


def _placed_on(order: Order) -> str:
    return as_utc(order.created_at).date().isoformat()


def order_payload(settings: Settings, order: Order) -> dict:
    customer = db.session.get(Customer, order.customer_id)
    shipment = db.session.execute(select(Shipment).where(Shipment.order_id == order.id)
                                  .order_by(Shipment.id.desc()).limit(1)).scalar_one_or_none()
    flags = order.flags
    delivery: date | None = shipment.estimated_delivery if shipment is not None else None
    values: dict = {
        "number": str(order.number), "placed_on": _placed_on(order), "status": order.status,
        "total": _money(order.total, order.currency), "currency": order.currency, "channel": order.channel,
        "vip": "vip" in flags, "gift": bool(order.gift or "gift" in flags),
        "replacement": bool(order.replacement_for_id) or "replacement" in flags,
        "tracking_number": shipment.tracking_number if shipment is not None else None,
        "estimated_delivery": delivery.isoformat() if delivery else None,
        "contact": _Ref(str(order.customer_id)),
    }
    if customer is not None and has_account(customer):
        values["account"] = _Ref(str(customer.id))
    elif settings.default_account_id:
        values["account"] = _Id(settings.default_account_id)
    if settings.order_object == "Opportunity":
        stages = {**DEFAULT_STAGES, **(settings.mapping.get("opportunity_stages") or {})}
        values["stage"] = stages.get(order.status, OPEN_STAGE)
        return _apply(settings, "opportunity", str(order.id), values)
    values["salesforce_status"] = ORDER_STATUS
    return _apply(settings, "order", str(order.id), values)
