"""Which addresses an outbound request may connect to (the SSRF guard's decision, no I/O but DNS).

An address is public when it is globally routable and not multicast. An IPv6 address that carries an
IPv4 address is judged by that IPv4 address, whatever Python's ``ipaddress`` thinks of the IPv6 form
(it calls ``64:ff9b::7f00:1`` and ``2002:7f00:1::`` global, yet both reach 127.0.0.1):

* ``::ffff:a.b.c.d`` (IPv4-mapped), ``::ffff:0:a.b.c.d`` (IPv4-translated, RFC 2765),
* ``64:ff9b::a.b.c.d`` (NAT64, RFC 6052) and ``64:ff9b:1::/48`` (local NAT64, RFC 8215),
* ``2002:AABB:CCDD::/48`` (6to4, RFC 3056),
* ``::a.b.c.d`` (IPv4-compatible, deprecated by RFC 4291).

The allowed networks (for tests, development, an office network) come from a setting: ``true``
(or ``yes``, ``1``, ``all``) allows every address, a comma separated list (``127.0.0.0/8, ::1``) allows
those networks; an address is allowed when it, or the IPv4 address it carries, is in one of them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Allowed = bool | list[ipaddress.IPv4Network | ipaddress.IPv6Network]

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


class TargetRefused(ValueError):
    """The URL may not be called: a bad scheme, a host that does not resolve, or an address that is not
    public and not allowed."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries in one of the forms above, else None."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _SIXTOFOUR:
        return ip.sixtofour
    if ip in _TRANSLATED or any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _COMPATIBLE and int(ip) > 1:  # not :: (unspecified) nor ::1 (loopback): judged as IPv6
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, multicast, reserved, unspecified,
    shared (100.64/10), documentation, nor an IPv6 form of such an IPv4 address."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    return ip.is_global and not ip.is_multicast


def allowed_networks(*settings) -> Allowed:
    """The networks the settings allow (``True``: every address); ValueError when one is unreadable."""
    networks: list = []
    for setting in settings:
        if setting is True:
            return True
        if not setting:
            continue
        items = setting.split(",") if isinstance(setting, str) else list(setting)
        if len(items) == 1 and str(items[0]).strip().lower() in ("true", "yes", "1", "all"):
            return True
        networks += [ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip()]
    return networks


def is_allowed(ip: IPAddress, allowed: Allowed) -> bool:
    if allowed is True:
        return True
    if allowed is False:
        return False
    candidates = [ip] + [inner for inner in (embedded_ipv4(ip),) if inner is not None]
    return any(c in net for c in candidates for net in allowed if net.version == c.version)


def check_address(ip: IPAddress, allowed: Allowed, host: str | None = None, hint: str = "") -> None:
    """TargetRefused unless ``ip`` is public or allowed."""
    if is_public(ip) or is_allowed(ip, allowed):
        return
    where = f"{host} resolves to {ip}," if host and host != str(ip) else f"{ip} is"
    raise TargetRefused(f"{where} a private, loopback, link-local or reserved address"
                        + (f" (allow it with {hint})" if hint else ""))


def resolve_checked(host: str, port: int, allowed: Allowed, hint: str = "") -> list[str]:
    """Every address ``host`` resolves to, each checked (one refused address refuses the host: DNS may
    answer with either). The caller connects to these, never to a second lookup's answer."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from exc
    addresses = _unique(str(info[4][0]).split("%", 1)[0] for info in infos)
    if not addresses:
        raise TargetRefused(f"cannot resolve {host}")
    for address in addresses:
        check_address(ipaddress.ip_address(address), allowed, host, hint)
    return addresses


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
