"""The Turkish catalog is compiled when the distribution is built: the wheel carries the .mo beside its
.po, and a plugin loaded from such a package uses it as it is (an editable install compiles on load)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from engine.i18n import compile_catalogs, packaged
from plugins.notify_email import i18n

ROOT = Path(__file__).resolve().parents[2]
CATALOG = "plugins/notify_email/translations/tr/LC_MESSAGES/notify_email"


@pytest.mark.slow
def test_the_wheel_ships_the_compiled_catalog_with_every_translation(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("hookshop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"{CATALOG}.po", f"{CATALOG}.mo"} <= names
        archive.extract(f"{CATALOG}.mo", tmp_path)
    with (tmp_path / f"{CATALOG}.mo").open("rb") as fh:
        compiled = read_mo(fh)
    with (ROOT / f"{CATALOG}.po").open("rb") as fh:
        source = read_po(fh)
    translated = {m.id: m.string for m in source if m.id and m.string}
    assert len(translated) > 20
    assert all(compiled[msgid].string == text for msgid, text in translated.items())


def test_packaged_catalogs_are_used_where_they_are_and_a_source_tree_compiles_them(tmp_path):
    assert not packaged(i18n.SOURCE, i18n.DOMAIN)  # this checkout: sources only
    po = tmp_path / "tr" / "LC_MESSAGES" / "notify_email.po"
    po.parent.mkdir(parents=True)
    po.write_bytes((ROOT / f"{CATALOG}.po").read_bytes())
    assert not packaged(tmp_path, i18n.DOMAIN)
    compile_catalogs(tmp_path, tmp_path, i18n.DOMAIN)  # as the build does: the .mo beside the .po
    assert packaged(tmp_path, i18n.DOMAIN)
    # a source newer than its compiled catalog is not trusted
    os.utime(po, (po.stat().st_atime, po.with_suffix(".mo").stat().st_mtime + 10))
    assert not packaged(tmp_path, i18n.DOMAIN)
