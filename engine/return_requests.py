"""The customer's return request page: ``GET /returns/request?order=<number>`` (the link of the follow-up
e-mail, ``{PUBLIC_URL}/returns/request?order=<number>``) and ``POST /returns/request``. No API key: it is
outside ``/api/v1``; the order number AND the order's e-mail are the customer's proof.

Two steps. ``find``: the order number and e-mail, compared in constant time; a wrong pair only says
"we could not find an order with that number and e-mail" (nobody learns which orders or e-mails exist).
``submit``: the order's shipped lines (quantities left to return; serials of tracked units), reason,
refund or exchange; the pair is checked again under the order's lock and the return opens ``requested``,
waiting for customer service.

CSRF: a random value in Flask's signed session cookie (HttpOnly, SameSite=Lax) and, in each form, the
same value signed with ``itsdangerous`` (timed: a form older than an hour is refused). A POST whose token
is missing, forged, expired or not the session's is a 400 and changes nothing. Bounded input: every field
has a maximum length, at most 200 lines per request, quantities of at most 6 digits.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, current_app, render_template, request, session, url_for
from itsdangerous import BadData, URLSafeTimedSerializer

from engine.errors import DomainError, NotFound
from engine.services import returns

blp = Blueprint("return_requests", __name__)

CSRF_MAX_AGE = 3600
MAX_LINES = 200
LIMITS = {"order": 20, "email": 254, "reason": 1000, "resolution": 16, "step": 16}


def init_app(app) -> None:
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.register_blueprint(blp)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="hookshop-return-request")


def csrf_token() -> str:
    nonce = session.get("return_request_csrf")
    if not nonce:
        nonce = session["return_request_csrf"] = secrets.token_urlsafe(24)
    return _serializer().dumps(nonce)


def _csrf_ok(token: str | None) -> bool:
    nonce = session.get("return_request_csrf")
    if not nonce or not token or len(token) > 200:
        return False
    try:
        value = _serializer().loads(token, max_age=CSRF_MAX_AGE)
    except BadData:
        return False
    return isinstance(value, str) and hmac.compare_digest(value.encode(), nonce.encode())


def _page(step: str, status: int = 200, **context):
    context.setdefault("errors", [])
    for name in ("order_number", "email", "reason", "resolution"):
        context.setdefault(name, "")
    return render_template("return_request.html", step=step, action=url_for("return_requests.form"),
                           csrf_token=csrf_token(), shop_name=current_app.config.get("SHOP_NAME"),
                           support_email=current_app.config.get("SUPPORT_EMAIL"), **context), status


def _field(name: str) -> str:
    return (request.form.get(name) or "").strip()[:LIMITS[name] + 1]


@blp.get("/returns/request")
def form():
    number = (request.args.get("order") or "").strip()
    return _page("find", order_number=number if len(number) <= LIMITS["order"] else "")


@blp.post("/returns/request")
def submit():
    if not _csrf_ok(request.form.get("csrf_token")):
        return _page("find", 400, errors=["This form has expired or did not come from this page: please try again."])
    values = {name: _field(name) for name in LIMITS}
    too_long = [name for name in ("order", "email", "reason") if len(values[name]) > LIMITS[name]]
    if too_long:
        return _page("find", 422, errors=[f"The {name} is too long." for name in too_long])
    number, email = values["order"], values["email"]
    try:
        order = returns.find_customer_order(number, email)
    except NotFound as exc:
        return _page("find", 404, errors=[exc.message[:1].upper() + exc.message[1:] + "."],
                     order_number=number, email=email)
    lines = returns.returnable_lines(order)
    context = {"order_number": number, "email": email, "lines": lines, "reason": values["reason"],
               "resolution": values["resolution"]}
    if values["step"] != "submit":
        return _page("lines", **context)
    chosen, problems = _chosen_lines(lines)
    if not values["reason"]:
        problems.append("Please tell us why you return it.")
    if values["resolution"] not in ("refund", "exchange"):
        problems.append("Please choose a refund or an exchange.")
    if not chosen and not problems:
        problems.append("Please choose at least one item to return.")
    if problems:
        return _page("lines", 422, errors=problems, **context)
    try:
        order_return = returns.request_return(number, email, chosen, values["reason"], values["resolution"])
    except DomainError as exc:
        return _page("lines", exc.status, errors=[exc.message], **context)
    return _page("done", 201, order_return=order_return, order_number=number)


def _chosen_lines(lines: list[dict]) -> tuple[list[dict], list[str]]:
    """The return's lines from the form (quantities per untracked line, checked serials per tracked one)."""
    chosen, problems = [], []
    for line in lines[:MAX_LINES]:
        if line["tracked"]:
            serials = [s[:128] for s in request.form.getlist(f"serial_{line['line_id']}")[:1000]]
            if serials:
                chosen.append({"sku": line["sku"], "quantity": len(serials), "serials": serials})
            continue
        raw = (request.form.get(f"qty_{line['line_id']}") or "0").strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
            problems.append(f"The quantity of {line['name']} is not a number.")
        elif int(raw) > 0:
            chosen.append({"sku": line["sku"], "quantity": int(raw)})
    return chosen, problems
