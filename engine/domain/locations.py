"""Location paths: pure rules (no Flask, no database).

A path names a warehouse and the places inside it, outermost first: ``MAIN``, ``MAIN/A-01-3``,
``MAIN/QUARANTINE``. Each segment is 1 to 32 upper-case letters, digits, ``-`` and ``_``, starting
with a letter or a digit; segments are joined by ``/``; a path is at most 64 characters and 8
segments. The first segment is always a warehouse, and every other location lives in the one its
path names minus the last segment.
"""

from __future__ import annotations

import re

MAX_PATH = 64
MAX_SEGMENT = 32
MAX_DEPTH = 8
SEGMENT = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
WAREHOUSE = "warehouse"
KINDS = ("warehouse", "bin", "receiving", "quarantine", "staging")
# where stock may be allocated unless the location says otherwise: bins and warehouses hold sellable
# stock; receiving (not put away yet), quarantine (never) and staging (already on its way) do not
PICKABLE_BY_DEFAULT = {"warehouse": True, "bin": True, "receiving": False, "quarantine": False, "staging": False}
FORMAT = ("a path of upper-case letters, digits, - and _, segments joined by / (at most 64 characters, "
          "8 segments), e.g. MAIN or MAIN/A-01-3")


def path_errors(path: str) -> list[str]:
    """What is wrong with ``path`` as a location path (empty when nothing is)."""
    if not isinstance(path, str) or not path:
        return ["a location path is required"]
    if len(path) > MAX_PATH:
        return [f"at most {MAX_PATH} characters"]
    segments = path.split("/")
    if len(segments) > MAX_DEPTH:
        return [f"at most {MAX_DEPTH} segments"]
    bad = [s for s in segments if not SEGMENT.fullmatch(s)]
    if bad:
        hint = f" (did you mean {path.upper()}?)" if all(SEGMENT.fullmatch(s.upper()) for s in segments) else ""
        return [f"{path!r} is not {FORMAT}{hint}"]
    return []


def parent_path(path: str) -> str | None:
    """The path one segment up (``MAIN/A-01`` -> ``MAIN``), None for a warehouse."""
    return path.rsplit("/", 1)[0] if "/" in path else None


def warehouse_of(path: str) -> str:
    return path.split("/", 1)[0]
