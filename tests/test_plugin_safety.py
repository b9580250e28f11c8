"""Plugin safety at start-up: an allow-list of plugins (HOOKSHOP_PLUGINS_ALLOWED), the disabled list winning
over it, and HOOKSHOP_TRACE_PLUGINS=1 logging every hook call with its plugins and time (never its
arguments)."""

from __future__ import annotations

import logging

import pytest
from conftest import make_app, order_body

from engine import hookimpl
from engine.config import load_settings

SQLITE = pytest.mark.parametrize("database", ["sqlite"])  # plugin loading does not depend on the database


class Recorder:
    name = "recorder"

    def __init__(self):
        self.placed = []

    @hookimpl
    def order_placed(self, order, event):
        self.placed.append(order.id)


def _infos(app):
    return {info.name: info for info in app.extensions["hookshop"].infos}


@SQLITE
def test_only_allowed_plugins_load(database, tmp_path, request):
    app = make_app(database, tmp_path, request, PLUGINS_ALLOWED=["carrier_generic", "recorder"],
                   EXTRA_PLUGINS=[("recorder", Recorder()), ("other", Recorder())])
    infos = _infos(app)
    assert infos["carrier_generic"].enabled and infos["recorder"].enabled
    assert infos["payments_manual"].enabled  # the core's own
    for name in ("accounting_export", "channel_webhook", "notify_email", "other"):
        assert not infos[name].enabled and infos[name].reason == "not in HOOKSHOP_PLUGINS_ALLOWED", name
    assert not app.extensions["hookshop"].pm.has_plugin("other")


@SQLITE
def test_the_disabled_list_wins_over_the_allow_list(database, tmp_path, request):
    app = make_app(database, tmp_path, request, PLUGINS_ALLOWED=["carrier_generic"],
                   PLUGINS_DISABLED=["carrier_generic"])
    assert _infos(app)["carrier_generic"].reason == "disabled by HOOKSHOP_PLUGINS_DISABLED"


def test_settings_read_the_lists_and_the_switches_from_the_environment():
    settings = load_settings(environ={"HOOKSHOP_PLUGINS_ALLOWED": "a, b", "HOOKSHOP_TRACE_PLUGINS": "1",
                                      "HOOKSHOP_COOKIE_SECURE": "off"})
    assert settings["PLUGINS_ALLOWED"] == ["a", "b"]
    assert settings["TRACE_PLUGINS"] is True and settings["COOKIE_SECURE"] is False
    assert load_settings(environ={"HOOKSHOP_TRACE_PLUGINS": "0"})["TRACE_PLUGINS"] is False
    with pytest.raises(ValueError, match="HOOKSHOP_TRACE_PLUGINS"):
        load_settings(environ={"HOOKSHOP_TRACE_PLUGINS": "maybe"})


@SQLITE
def test_traced_hook_calls_are_logged_with_plugins_and_time(database, tmp_path, request, caplog):
    recorder = Recorder()
    app = make_app(database, tmp_path, request, TRACE_PLUGINS=True, EXTRA_PLUGINS=[("recorder", recorder)])
    from conftest import ApiClient, new_key

    api = ApiClient(app.test_client(), new_key(app))
    assert api.post("/products", {"sku": "MUG", "name": "Mug", "price": 900, "currency": "EUR"}).status_code == 201
    assert api.post("/stock/receipts", {"sku": "MUG", "quantity": 2}).status_code == 201
    with caplog.at_level(logging.INFO, logger="hookshop.plugins.trace"):
        order = api.post("/orders", order_body([("MUG", 1)], email="secret.person@example.com")).get_json()
    assert recorder.placed == [order["id"]]
    lines = [r for r in caplog.records if r.name == "hookshop.plugins.trace" and r.hook == "order_placed"]
    assert lines and "recorder" in lines[0].plugins and lines[0].duration_ms >= 0
    assert "recorder" in lines[0].getMessage() and " ms" in lines[0].getMessage()
    assert not any("secret.person" in r.getMessage() for r in caplog.records if r.name.startswith("hookshop.plugins"))


@SQLITE
def test_no_trace_unless_asked(database, tmp_path, request, caplog):
    app = make_app(database, tmp_path, request)
    with caplog.at_level(logging.INFO, logger="hookshop.plugins.trace"):
        app.extensions["hookshop"].pm.hook.admin_screens()
    assert not [r for r in caplog.records if r.name == "hookshop.plugins.trace"]
