"""Channel formats: how each platform signs its order webhook and how its payload maps to an order.

A format (registered with ``register_channels``) is an object with:

* ``name``;
* ``verify(request, secrets) -> None | str``: ``None`` when the raw body (``request.get_data()``) carries
  a valid signature of one of the channel's secrets, else the reason (answered 401);
* ``delivery_id(request) -> str``: the sender's delivery (or event) id, for deduplication;
* optional ``is_ping(request) -> bool``: an unsigned "hello" to acknowledge with 200 (WooCommerce);
* ``parse(request) -> dict``: ``place_order`` data. Besides the core's fields (``external_id``,
  ``customer`` with ``shipping_address``, ``lines`` with ``sku``/``quantity``/``unit_price``,
  ``shipping_total``, ``discount_total``, ``tax_total``, ``note``, ``payment_status``,
  ``payment_reference``) it may give ``currency`` (checked against the products),
  ``billing_address``, ``topic``, ``ignore`` (a reason to acknowledge without creating anything),
  ``paths`` (the payload's own names of ``customer``, ``lines``, ``currency`` for error messages)
  and, per line, ``keys`` (the channel's ids of the item, looked up in the channel's ``sku_map``)
  and ``path`` (where the line is in the payload). Raise ``ValidationFailed`` with field errors
  named after the payload when it is malformed.
* optional ``generates_secret`` (True: the secret may be left out at channel creation and is
  generated, a ``whsec_`` Standard Webhooks secret) and ``check_secret(secret) -> str | None``.

The bundled formats read their payloads with marshmallow schemas (one module per platform; the
fields in ``fields``, the addresses in ``addresses``): every field error of a payload at once, keyed by
the payload's own field names, in marshmallow's nested shape.
"""

from __future__ import annotations

from plugins.channel_webhook.formats.common import Problems, clean_delivery_id, load_json, text
from plugins.channel_webhook.formats.generic import GenericFormat
from plugins.channel_webhook.formats.shopify import ShopifyFormat
from plugins.channel_webhook.formats.woocommerce import WooCommerceFormat

FORMATS = [GenericFormat(), ShopifyFormat(), WooCommerceFormat()]

__all__ = ["FORMATS", "GenericFormat", "Problems", "ShopifyFormat", "WooCommerceFormat", "clean_delivery_id",
           "load_json", "text"]
