"""The outbound toolkit: one HTTP client with an SSRF guard, Standard Webhooks signing and verification.

Plugins call other systems through it (docs/plugins.md, "Outbound HTTP and signed webhooks"):

* ``Client`` (``engine.outbound.http``): requests + urllib3 ``Retry``, timeouts, the guard as the
  transport adapter; ``Answer``, ``OutboundError``, ``TargetRefused``.
* ``sign_headers``, ``verify``, ``new_secret``, ``secret_key``, ``SignatureRefused``
  (``engine.outbound.signing``), on the ``standardwebhooks`` package.
* ``is_public``, ``embedded_ipv4``, ``check_address`` (``engine.outbound.addresses``): the guard's decision.
"""

from engine.outbound.addresses import TargetRefused, allowed_networks, check_address, embedded_ipv4, is_public
from engine.outbound.http import DEFAULT_TIMEOUT, RETRY_STATUSES, Answer, Client, OutboundError
from engine.outbound.signing import SignatureRefused, new_secret, secret_key, sign_headers, signature, verify

__all__ = ["DEFAULT_TIMEOUT", "RETRY_STATUSES", "Answer", "Client", "OutboundError", "SignatureRefused",
           "TargetRefused", "allowed_networks", "check_address", "embedded_ipv4", "is_public", "new_secret",
           "secret_key", "sign_headers", "signature", "verify"]
