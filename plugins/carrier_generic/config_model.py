"""What the carriers file describes, once validated (config.py builds it): carriers, their zones, services,
rate bands, tracking numbers and API. Frozen dataclasses, read by the carrier at every call."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Band:
    max_grams: int | None  # None: no upper limit
    price: int


@dataclass(frozen=True)
class Zone:
    name: str
    countries: tuple[str, ...]  # ISO 3166-1 alpha-2, or "*" for every country
    postal_prefixes: tuple[str, ...] = ()

    def match(self, country: str, postal_code: str) -> tuple[int, int] | None:
        """How well the address fits: (country named explicitly, length of the matching prefix)."""
        explicit = country in self.countries
        if not explicit and "*" not in self.countries:
            return None
        if not self.postal_prefixes:
            return (int(explicit), 0)
        matching = [len(p) for p in self.postal_prefixes if postal_code.startswith(p)]
        return (int(explicit), max(matching)) if matching else None


@dataclass(frozen=True)
class Service:
    name: str
    transit_days: dict  # zone -> business days ("*": every zone)
    rates: dict  # zone -> tuple[Band, ...]
    free_over: dict = field(default_factory=dict)  # zone -> goods value (minor units) from which it is free
    tracking_prefix: str | None = None

    def per_zone(self, table: dict, zone: str):
        return table.get(zone, table.get("*"))


@dataclass(frozen=True)
class Tracking:
    format: str = "s10"  # "s10" or "luhn"
    prefix: str = "HS"
    country: str = "XX"  # S10: the 2-letter code that ends the number
    digits: int = 10  # luhn: digits of the sequence
    start: int = 1
    url: str | None = None  # "{tracking_number}" is replaced; None: the plugin's own tracking page
    secret: str | None = None  # this carrier's webhook secret (default: the TRACKING_SECRET setting)


@dataclass(frozen=True)
class Api:
    url: str
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5
    headers: dict = field(default_factory=dict)
    request: dict | None = None
    response: dict = field(default_factory=dict)
    cancel_url: str | None = None
    cancel_method: str = "DELETE"


@dataclass(frozen=True)
class CarrierConfig:
    name: str
    label: str
    zones: tuple[Zone, ...]
    services: dict  # name -> Service, in the file's order
    tracking: Tracking = Tracking()
    currency: str | None = None
    holidays: str = "destination"  # a country code, "destination" or "none"
    holidays_subdivision: str | None = None
    weekend: tuple[int, ...] = (5, 6)
    sender: dict | None = None
    api: Api | None = None

    def zone_for(self, address: dict) -> Zone | None:
        country = str(address.get("country") or "").strip().upper()
        postal = normalize_postal(address.get("postal_code"))
        best, best_score = None, None
        for zone in self.zones:
            score = zone.match(country, postal)
            if score is not None and (best_score is None or score > best_score):
                best, best_score = zone, score
        return best


@dataclass(frozen=True)
class Settings:
    carriers: tuple[CarrierConfig, ...]
    source: str | None = None  # the file, or None for the built-in defaults


def normalize_postal(value) -> str:
    return "".join(str(value or "").split()).upper()
