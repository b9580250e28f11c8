"""Keep the admin's Turkish catalog in step with the strings of its screens (a developer's command, not
part of a running shop): ``python -m engine.admin.catalog_tool [--add FILE]``.

It extracts every message of engine/admin/*.py (``_``, ``gettext``, ``_l``) and of the admin templates with
Babel (and of the bundled plugins' admin screens: plugins/*/admin.py, plugins/*/admin_*.py, plugins/*/templates/admin/**), merges them into ``translations/tr/LC_MESSAGES/messages.po`` (new ones empty, gone ones dropped), and
with ``--add FILE`` takes translations from a Python file that defines ``TR = {english: turkish}``. It prints
what is still untranslated; tests/admin/test_translations.py fails while anything is."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]  # engine/
PO = Path(__file__).parent / "translations" / "tr" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
METHODS = [("admin/**.py", "python"), ("templates/admin/**.html", "jinja2")]
# the bundled plugins' admin screens (plugins/<name>/admin.py or admin_*.py, and their templates/admin/**) share
# the catalog (Babel's ``*`` matches one character at least)
PLUGINS = ROOT.parent / "plugins"
PLUGIN_METHODS = [("*/admin.py", "python"), ("*/admin_*.py", "python"), ("*/templates/admin/**.html", "jinja2")]


def extracted() -> dict[str, list[tuple[str, int]]]:
    """msgid -> where it is used, from the admin's code and templates."""
    found: dict[str, list[tuple[str, int]]] = {}
    sources = [(ROOT, METHODS, ""), (PLUGINS, PLUGIN_METHODS, "../plugins/")]
    for root, methods, prefix in sources:
        for filename, lineno, message, _comments, _context in extract_from_dir(
                str(root), methods, keywords=KEYWORDS, options_map={pattern: {} for pattern, _ in methods}):
            if "catalog_tool" in filename:
                continue
            for msgid in (message if isinstance(message, tuple) else (message,)):
                if msgid:
                    found.setdefault(msgid, []).append((prefix + filename, lineno))
    return found


def merged(translations: dict[str, str] | None = None) -> Catalog:
    old = {}
    if PO.exists():
        with PO.open("rb") as fh:
            old = {m.id: m.string for m in read_po(fh) if m.id}
    old.update(translations or {})
    catalog = Catalog(locale="tr", domain="messages", project="hookshop admin", fuzzy=False)
    for msgid, where in sorted(extracted().items()):
        catalog.add(msgid, old.get(msgid) or "", locations=where)
    return catalog


def main(argv: list[str]) -> int:
    extra = runpy.run_path(argv[argv.index("--add") + 1])["TR"] if "--add" in argv else {}
    catalog = merged(extra)
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=110)
    missing = [m.id for m in catalog if m.id and not m.string]
    for msgid in missing:
        print(f"untranslated: {msgid!r}")
    print(f"{len(catalog) - len(missing)} translated, {len(missing)} untranslated -> {PO}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
