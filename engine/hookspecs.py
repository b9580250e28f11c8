"""Every hook of hookshop. The docstring of each is its contract.

Two kinds:

* **Contract hooks** are called synchronously, in the request or at start-up,
  and their return values are used (providers, carriers, flags, blueprints...).
* **Stage hooks** are called *after the transaction that reached the stage has
  committed*, from the outbox, never in the request: from the process's
  background delivery thread in the embedded mode, from an rq job of
  ``hookshop worker`` in production, **at least once**. A plugin that raises
  is retried later with back-off and never rolls back the order. Make stage
  hook implementations idempotent: ``event["id"]`` is stable across retries.

Every stage hook receives ``event``: a dict with ``id`` (the outbox id),
``hook``, ``created_at`` (ISO 8601) and ``payload`` (what was recorded at the
stage). Implementations may declare only the arguments they need.
"""

from engine import hookspec

# --------------------------------------------------------------------------- contract hooks


@hookspec
def plugin_setup(app):
    """Called once when the app is created, before any request.

    Read your settings from ``app.config`` (the engine puts every
    ``HOOKSHOP_<NAME>`` setting there). Return ``None`` when ready, or a
    sentence saying why the plugin cannot work (a missing secret, say): the
    engine logs it once and disables the plugin; it never crashes the engine.
    """


@hookspec(historic=True)
def hookshop_addhooks(pluginmanager):
    """Add the plugin's own hook specifications (as pytest's ``pytest_addhooks``): call
    ``pluginmanager.add_hookspecs(module_or_class)`` with functions marked ``@hookspec``.

    Called once for each plugin when it is registered, before any other hook. The core declares only the
    hooks it fires; a hook that one plugin fires for others to extend it is that plugin's own. Other plugins
    implement it with ``@hookimpl`` as any hook, and the plugin calls it through ``registry().pm.hook``. A
    hook implementation with no specification still stops start-up, naming the plugin, once every plugin
    is registered (the order of registration does not matter); mark it ``@hookimpl(optionalhook=True)``
    when it should load without the plugin that declares the hook. Return value ignored.
    """


@hookspec
def register_payment_providers():
    """Return a list of payment provider objects (``engine.contracts.PaymentProvider``, checked at start-up).

    A provider has ``name`` (str) and:

    * ``pay(order, payment_method=None, data=None) -> PaymentOutcome`` — start,
      record or confirm payment of ``order.total - order.paid_total``. Called
      outside any database transaction; never write the order here.
    * ``refund(payment, amount) -> RefundOutcome`` — refund ``amount`` minor units.
    * ``void(payment) -> None`` — cancel an authorised or pending payment.
    * optional ``handle_webhook(request) -> (body, status)`` for
      ``POST /api/v1/payments/<name>/webhook``: verify the signature on the raw
      body before parsing.

    ``PaymentOutcome`` and ``RefundOutcome`` are in ``engine.contracts`` (and ``engine.services.payments``).
    """


@hookspec
def register_carriers():
    """Return a list of carrier objects (``engine.contracts.Carrier``, checked at start-up).

    A carrier has ``name`` (str), ``services`` (list of str) and:

    * ``rates(order) -> list[Rate]`` (``engine.contracts.Rate``)
    * ``create_shipment(order, service) -> ShipmentInfo`` (tracking number,
      estimated delivery, tracking url, optional label PDF bytes, price)
    * optional ``label(shipment) -> bytes`` (a PDF) when the label is made on demand
    * optional ``cancel_shipment(shipment)``
    * optional ``handle_tracking(request) -> (body, status)`` for
      ``POST /api/v1/carriers/<name>/tracking`` (verify the signature first).
    """


@hookspec
def register_channels():
    """Return a list of sales channel formats (``engine.contracts.SalesChannel``, checked at start-up:
    ``name``, ``verify(request, secrets)``, ``delivery_id(request)`` and ``parse(request)`` producing
    ``place_order`` data)."""


@hookspec
def register_exporters():
    """Return a list of exporters (``engine.contracts.Exporter``, checked at start-up: ``format`` and
    ``export(since, until, fh)``)."""


@hookspec
def order_flags(order, customer):
    """Return extra flags (a list of strings, e.g. ``["b2b"]``) for an order being placed.

    Called synchronously inside the placement transaction, after the core's own
    flags (``vip``, ``gift``, ``repeat``, ``coupon:<category>``). ``order`` is
    not committed yet: read it, do not change it, and do no slow I/O here.
    """


@hookspec
def register_blueprints():
    """Return a list of Flask blueprints (or flask-smorest Blueprints) to mount.

    flask-smorest blueprints are added to the OpenAPI document. Routes under
    ``/api/v1`` get the engine's API key check."""


@hookspec
def register_commands():
    """Return a list of click commands (or groups) to add to the ``hookshop`` CLI."""


@hookspec
def order_documents(order, kind):
    """Return the documents (a list; ``[]`` or ``None`` for none) to attach to a message about ``order``.

    Contract hook, called synchronously when a message is sent (e.g. by ``notify_email``), never
    inside a transaction that writes. ``kind`` says which message: the stage hook it answers
    (``"order_confirmed"``: the receipt, ``"order_shipped"``: the packing slip, ...). Each document
    is a tuple ``(filename, content_type, data)`` (``data``: bytes), optionally with a fourth item
    the message may quote: the document's number (a str), or a dict with ``number`` and ``tax`` (rows
    of ``rate``, ``net``, ``tax``, ``gross``, minor units: a receipt's VAT per rate). Return only documents that
    exist now (a receipt not yet numbered is no document); answer fast and do no network I/O.
    """


@hookspec
def periodic_tasks(now):
    """Do due background work (retries with back-off, scheduled syncs).

    Called by the sweeper every few seconds — in ``hookshop serve`` (embedded
    mode), ``hookshop worker`` and once per ``hookshop relay`` — inside an app
    context, with ``now`` (an aware UTC datetime). Do only what is due, keep it
    short, and make it safe to run in two processes at once (claim rows with a
    lease or ``FOR UPDATE SKIP LOCKED``). An exception is logged and the next
    round runs as usual. Return value ignored.
    """


@hookspec
def register_task_kinds():
    """Return the kinds of retried work the plugin hands to the core's retry queue (a list of
    ``engine.plugin_api.TaskKind``; ``[]`` for none).

    Contract hook, called once per app while it is created. Each kind has a ``name`` (unique across
    plugins: prefix it with the plugin's name), a ``handler(tasks) -> [Outcome]`` and its rules (delays,
    jitter, batch size, lease, ``enabled``, and callbacks called inside the transaction that records an
    outcome: ``on_outcome``, ``on_dead``, ``on_requeue``). The plugin enqueues work with
    ``engine.plugin_api.enqueue_task(kind, key, payload)`` inside its own transaction; the sweeper claims due
    tasks with a lease and calls the handler with no transaction open, at least once per task (be
    idempotent on ``task.key``). A failure is retried after the kind's next delay, never by sleeping; after
    the last delay the task is ``dead`` (``hookshop tasks --status dead``). Two kinds with one name, or an
    item that is not a ``TaskKind``, stop start-up with a ``PluginError``.
    """


@hookspec
def admin_screens():
    """Return the screens a plugin adds to the bundled admin's navigation (a list; ``[]`` for none).

    Contract hook, called once per app after ``register_blueprints``. Each item is an
    ``engine.admin.plugin_screens.AdminScreen(label, endpoint, permission, position)`` (or a tuple in that
    order): ``label`` (a ``lazy_gettext`` string: translated per request), ``endpoint`` (a view of a
    blueprint the plugin returned from ``register_blueprints``, mounted under ``/admin/`` and passed
    through ``engine.admin.plugin_screens.protect``), ``permission`` (an admin permission of
    ``engine.admin.permissions.PERMISSIONS``: who sees the entry), ``position`` (its place in the
    menu) and optionally ``attention`` (a function without arguments returning ``[(label, count)]``:
    what waits for staff, shown on the dashboard to the users with the permission; database reads only).
    A screen whose endpoint is not such a view, or whose permission is unknown, stops start-up with a
    ``PluginError`` naming the plugin.
    """


@hookspec
def admin_order_panels(order):
    """Return sections for the admin's order page (a list; ``[]`` or ``None`` for none).

    Contract hook, called synchronously while a staff member's order page renders. ``order`` is the
    current ``Order`` row: read it, do not change it. Each section is a dict with ``title`` (str),
    ``html`` (the section's body, rendered by the plugin with ``render_template``, which escapes the
    data; shown as it is), ``permission`` (the admin permission a user needs to see it; default
    ``orders.view``) and optionally ``position`` (the sections' order, default 100). Answer fast, with
    database reads only; an exception is logged and the section shows as failed, never the page.
    """


# --------------------------------------------------------------------------- stage hooks


@hookspec
def order_placed(order, event):
    """Stage 1: the order was placed (status ``placed``, or ``on_hold`` when a line is backordered).

    Stock is reserved, the customer profile is updated, flags are set.
    """


@hookspec
def order_paid(order, payment, event):
    """Stage 1b: the payment provider confirmed the charge; the order is ``paid``
    (or stays ``on_hold`` to be released to ``paid``)."""


@hookspec
def order_on_hold(order, reason, event):
    """Stage 2: the order was put on hold (``reason``: e.g. ``"backorder: SKU-1 x2"``)."""


@hookspec
def order_released(order, event):
    """Stage 2: a held order went back to the status it was held from."""


@hookspec
def order_picked(order, event):
    """Stage 2: the last unit was scanned; the order is ``picked``."""


@hookspec
def stock_low(product, available, event):
    """Stage 2: the available stock of ``product`` fell to or below a reorder rule's point: once per
    crossing, not again until it rose above the point. ``event["payload"]`` also names the rule's
    ``location`` (null: all locations), ``rule_id``, ``alert_id`` and the ``recipients`` to tell."""


@hookspec
def purchase_order_created(purchase_order, event):
    """Stage 2: a draft purchase order was created (missing stock or low stock); one draft per supplier
    (per product without one): later shortfalls add to it and fire nothing."""


@hookspec
def order_confirmed(order, event):
    """Stage 3: the order is ``confirmed`` (post the sale, e-mail the receipt)."""


@hookspec
def order_packed(order, event):
    """Stage 4: every picked unit was scanned again at packing; the order is ``packed``."""


@hookspec
def order_shipped(order, shipment, event):
    """Stage 4: the carrier created ``shipment`` (tracking number, ETA); the order is ``shipped``."""


@hookspec
def order_delivered(order, event):
    """Stage 5: the carrier or staff reported delivery; the order is ``delivered``."""


@hookspec
def order_completed(order, event):
    """Stage 5: the follow-up was sent (or follow-ups are off); the order is ``completed``."""


@hookspec
def order_cancelled(order, event):
    """The order was cancelled: reservations are released; ``event["payload"]``
    says what happened to the payment (``voided``, ``refunded`` or ``none``)."""


@hookspec
def return_requested(order, order_return, event):
    """Stage 5: a return was opened, by customer service (``order_return.source`` ``staff``) or by the
    customer on the return request page (``customer``); ``order_return.resolution``: refund or exchange.
    Fired once per return."""


@hookspec
def return_approved(order, order_return, event):
    """Stage 5: customer service approved the return (``order_return.status`` ``approved``): the customer
    may send the units back. A return opened by staff is approved in the transaction that opens it
    (``return_requested`` then ``return_approved``) unless ``RETURNS_REQUIRE_APPROVAL`` is on; a
    customer's request waits for ``POST /returns/{id}/approve``. Fired once per return."""


@hookspec
def return_rejected(order, order_return, event):
    """Stage 5: customer service rejected the return (``order_return.rejection_reason``, also
    ``event["payload"]["reason"]``); nothing comes back and nothing is refunded. Fired once per return."""


@hookspec
def return_received(order, order_return, event):
    """Stage 5: the returned units arrived: resellable ones back to stock, damaged ones to the quarantine
    location (``event["payload"]["lines"]``: ``sku``, ``quantity``, ``serials``, ``condition``,
    ``location``). Fired once per return, also when its refund is retried."""


@hookspec
def refund_issued(order, payment, amount, event):
    """Stage 5: ``amount`` minor units were refunded on ``payment``."""
