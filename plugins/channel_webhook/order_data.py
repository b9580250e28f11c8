"""A parsed channel payload as ``place_order`` data (the channel's ``sku_map``, its payment settings), and
the core's refusals named after the payload's own fields."""

from __future__ import annotations

from sqlalchemy import select

from engine.plugin_api import Product, ValidationFailed, db
from plugins.channel_webhook.formats import Problems
from plugins.channel_webhook.redact import mask_card_numbers


def order_data(channel, parsed: dict) -> tuple[dict, list[dict]]:
    """``place_order`` data from a parsed payload: skus through the channel's map, its payment settings."""
    problems = Problems()
    sku_map = channel.sku_map or {}
    lines, line_paths = [], []
    extras = list(parsed.get("non_stock_lines") or [])
    for line in parsed.get("lines") or []:
        keys = [str(k) for k in (line.get("keys") or []) if k]
        sku = next((sku_map[k] for k in keys if k in sku_map), None) or line.get("sku")
        sku_path = line.get("sku_path") or f"{line.get('path', 'lines')}.sku"
        if not sku and not keys:  # a custom line (no sku, no product): kept on the order, holds no stock
            extras.append({**line, "kind": "custom"})
            continue
        if not sku:
            problems.add(sku_path, "the item has no sku, and none of its ids "
                         f"({', '.join(keys) or 'none'}) is in the channel's sku_map")
            continue
        item = {"sku": sku, "quantity": line["quantity"]}
        if line.get("unit_price") is not None:
            item["unit_price"] = line["unit_price"]
        lines.append(item)
        line_paths.append({"path": line.get("path"), "sku_path": sku_path, "channel_sku": line.get("sku")})
    problems.check()
    status = channel.payment_status
    paid = status == "paid" or (status == "auto" and parsed.get("payment_status") == "paid")
    external_id = parsed.get("external_id")
    data = {"channel": channel.name, "external_id": external_id, "customer": parsed["customer"], "lines": lines,
            "payment_provider": channel.payment_provider,
            "shipping_total": parsed.get("shipping_total") or 0, "discount_total": parsed.get("discount_total") or 0,
            "tax_total": parsed.get("tax_total") or 0, "gift": bool(parsed.get("gift")),
            # what the channel sent is accepted: what it lacks (e-mail, address) is flagged for review
            "incomplete_ok": True, "currency": parsed.get("currency"),
            "billing_address": parsed.get("billing_address"),
            "non_stock_lines": [{"kind": x.get("kind"), "title": x.get("title") or x.get("sku") or x.get("kind"),
                                 "sku": x.get("sku"), "quantity": x.get("quantity") or 1,
                                 "unit_price": x.get("unit_price") or 0,
                                 "requires_shipping": x.get("kind") not in ("gift_card", "no_shipping")}
                                for x in extras]}
    for key in ("prices_include_tax", "tax_status", "tax_lines", "channel_total", "presentment_currency",
                "presentment_totals", "locale"):
        if parsed.get(key) is not None:
            data[key] = parsed[key]
    if parsed.get("note"):
        data["note"] = mask_card_numbers(parsed["note"])  # a buyer may type anything into a note
    if paid:
        data["payment_status"] = "paid"
        data["payment_reference"] = parsed.get("payment_reference") or f"{channel.name}:{external_id}"
    return data, line_paths


def check_currency(currency: str | None, lines: list[dict], path: str) -> None:
    if not currency:
        return
    skus = {line["sku"] for line in lines}
    theirs = set(db.session.execute(select(Product.currency).where(Product.sku.in_(skus))).scalars())
    other = sorted(c for c in theirs if c.upper() != currency)
    if other:
        raise ValidationFailed(f"the order is in {currency} but the products are priced in {', '.join(other)}",
                               errors={path: [f"the products are priced in {', '.join(other)}"]})


def payload_errors(errors: dict, line_paths: list[dict], paths: dict) -> dict:
    """The core's field errors (``lines.0.sku``) named after the payload (``line_items.0.sku``)."""
    problems = Problems()
    for key, value in (errors or {}).items():
        if key == "lines" and isinstance(value, dict):
            for index, fields in value.items():
                where = line_paths[int(index)] if str(index).isdigit() and int(index) < len(line_paths) else None
                for field, messages in (fields.items() if isinstance(fields, dict) else [("_", fields)]):
                    if where is None:
                        target = f"{paths.get('lines', 'lines')}.{index}.{field}"
                    elif field == "sku":
                        target = where["sku_path"]
                    else:
                        target = f"{where['path']}.{field}"
                    for message in messages if isinstance(messages, list) else [messages]:
                        if field == "sku" and str(message).startswith("unknown sku") and where:
                            message = (f"{message}: no product has this sku (channel sku "
                                       f"{where['channel_sku']!r}); add it to the channel's sku_map")
                        problems.add(target, str(message))
        elif key == "lines" and isinstance(value, list):
            for message in value:
                problems.add(paths.get("lines", "lines"), str(message))
        else:
            if isinstance(value, list):
                for message in value:
                    problems.add(paths.get(key, key), str(message))
            else:
                problems.errors[paths.get(key, key)] = value
    return problems.errors
