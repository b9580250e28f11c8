"""Address schemas: a platform's address fields mapped to ours (``line1``, ``city``, ``postal_code``, ...).

The platforms' addresses are kept as they come (the core flags an incomplete one for review); the
generic format's address is the REST API's and is checked (``checked=True``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, post_load

from plugins.channel_webhook.formats.common import person_name
from plugins.channel_webhook.formats.fields import Country, Email, Text

OURS = ("name", "company", "line1", "line2", "city", "region", "postal_code", "country", "phone")
NEEDED = ("line1", "city", "postal_code", "country")


class AddressSchema(Schema):
    """Loads an address as ``{"address": ours or None, "name", "phone", "email"}``: ``address`` is None
    when none of its fields (the name apart) has a text; ``name`` is the person's even then."""

    class Meta:
        unknown = EXCLUDE

    person = True  # the platform's name is ``name`` or ``first_name`` + ``last_name``

    @post_load
    def ours(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        name = person_name(data) if self.person else data.get("name")
        keys = [k for k in OURS if k != "name" or not self.person]
        given = {k: data[k] for k in OURS if k != "name" and data.get(k)}
        address = {**({"name": name} if name else {}), **given} if any(data.get(k) for k in keys) else None
        return {"address": address, "name": name, "phone": data.get("phone"), "email": data.get("email")}


class NamedAddressSchema(AddressSchema):
    """An address whose ``name`` is one field (the REST API's)."""

    person = False


def address_schema(names: Mapping[str, str], *, checked: bool = False, email: str | None = None,
                   person: bool = True) -> type[Schema]:
    """An ``AddressSchema`` reading ``names`` (ours -> the platform's), ``email`` (the e-mail's key, if the
    address holds one) and, with ``person``, ``first_name`` and ``last_name``."""
    declared: dict[str, Any] = {}
    for ours, theirs in names.items():
        limit = 100 if ours in ("city", "region") else 200
        if ours == "country":
            declared[ours] = Country(needed=checked, data_key=theirs) if checked else Text(
                limit, upper=True, data_key=theirs)
        else:
            declared[ours] = Text(limit, needed=checked and ours in NEEDED,
                                  longest=20 if checked and ours == "postal_code" else None, data_key=theirs)
    if person:
        declared.update(first_name=Text(), last_name=Text())
    if email:
        declared["email"] = Email(optional=True, data_key=email)
    return (AddressSchema if person else NamedAddressSchema).from_dict(declared, name="Address")
