"""The admin in English and Turkish: every message of its screens has a Turkish translation, and a staff
member who chose Turkish gets Turkish labels, money and dates."""

from __future__ import annotations

from babel.messages.pofile import read_po

from engine.admin import catalog_tool

from .conftest import log_in, make_staff


def test_every_admin_message_has_a_turkish_translation():
    used = catalog_tool.extracted()
    with catalog_tool.PO.open("rb") as fh:
        catalog = {m.id: m.string for m in read_po(fh) if m.id}
    missing = sorted(msgid for msgid in used if not catalog.get(msgid))
    assert len(used) > 50
    assert missing == [], "run `python -m engine.admin.catalog_tool --add FILE` with their translations"


def test_a_turkish_staff_member_gets_turkish_screens(app):
    client = log_in(app, make_staff(app, "owner", locale="tr"))
    page = client.get("/admin/").get_data(as_text=True)
    assert '<html lang="tr">' in page
    assert "Aşamaya göre siparişler" in page and "Çıkış yap" in page and "Orders per stage" not in page
    # the language is each user's own: switching to English changes only this user's screens
    assert client.post("/admin/me/language", {"locale": "en"}).status_code == 302
    assert "Orders per stage" in client.get("/admin/").get_data(as_text=True)


def test_money_is_written_per_locale(app):
    from flask_babel import force_locale

    from engine.admin.blueprint import money

    with app.test_request_context():
        with force_locale("en"):
            assert money(123450, "EUR") == "€1,234.50"
        with force_locale("tr"):
            assert money(123450, "EUR") == "€1.234,50"
        assert money(500, "JPY").endswith("500")
