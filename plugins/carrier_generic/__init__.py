"""carrier_generic: ship with any carrier that has no plugin of its own.

Works with no configuration: a built-in carrier ``generic`` with the services
``standard`` (3 business days) and ``express`` (1 business day) and a default
rate table by weight. Settings prefix: ``HOOKSHOP_CARRIER_GENERIC_``.
"""

from engine import hookimpl
from plugins.carrier_generic.carrier import GenericCarrier


@hookimpl
def register_carriers():
    return [GenericCarrier()]
