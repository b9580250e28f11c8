"""gettext catalogs shipped as ``.po`` sources: compiled at build time (setup.py) into the wheel, or, in an
editable install, into the instance folder when the app starts (a ``.mo`` older than its ``.po`` is
rewritten; nothing compiled is written into the source tree)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


def compile_catalogs(source: Path, target: Path, domain: str) -> Path:
    """Write ``target/<lang>/LC_MESSAGES/<domain>.mo`` for every ``.po`` whose ``.mo`` is missing or stale."""
    for po in source.glob(f"*/LC_MESSAGES/{domain}.po"):
        mo = target / po.relative_to(source).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parts[-3], domain=domain)
        # written beside and renamed: two processes starting at once never read half a file
        fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog)
        os.replace(tmp, mo)
    return target


def packaged(source: Path, domain: str) -> bool:
    """Every catalog was compiled at build time (an installed wheel) and is not older than its source."""
    sources = list(source.glob(f"*/LC_MESSAGES/{domain}.po"))
    return bool(sources) and all(po.with_suffix(".mo").exists() and
                                 po.with_suffix(".mo").stat().st_mtime >= po.stat().st_mtime for po in sources)


def catalog_directory(source: Path, domain: str, instance_path: str, name: str) -> Path:
    """Where the compiled catalogs are: beside the sources in a wheel, else ``instance/<name>/translations``."""
    if packaged(source, domain):
        return source
    return compile_catalogs(source, Path(instance_path) / name / "translations", domain)
