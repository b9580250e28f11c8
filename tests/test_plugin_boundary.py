"""The bundled plugins use only the public plugin API (``engine.plugin_api``) and never end the core's
transaction: an AST walk of every module under plugins/, and the transaction rule run on a database."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

import engine.plugin_api as plugin_api
from engine.plugin_api import db, end_read, inbox_seen, record_once, reset_session, transaction, utcnow

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"
PUBLIC = "engine.plugin_api"
ENDING = {"commit", "rollback"}


def _modules() -> list[Path]:
    return sorted(p for p in PLUGINS.rglob("*.py") if "__pycache__" not in p.parts)


def _is_engine(module: str | None) -> bool:
    return module is not None and (module == "engine" or module.startswith("engine."))


def import_violations(source: str, where: str) -> list[str]:
    """``file:line`` of every import of the core other than the public names of ``engine.plugin_api``."""
    public = set(plugin_api.__all__)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_engine(alias.name):
                    found.append(f"{where}:{node.lineno}: import {alias.name} (import from {PUBLIC} only)")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_engine(node.module):
            if node.module != PUBLIC:
                found.append(f"{where}:{node.lineno}: from {node.module} import ... (import from {PUBLIC} only)")
                continue
            for alias in node.names:
                if alias.name not in public:
                    found.append(f"{where}:{node.lineno}: {alias.name} is not in {PUBLIC}.__all__")
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_engine(node.args[0].value)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
              and node.args[0].value != PUBLIC):
            found.append(f"{where}:{node.lineno}: imports {node.args[0].value} dynamically")
    return found


def _names_session(node: ast.expr) -> bool:
    """``db.session``, ``db.session()``, ``<anything>.session`` or a variable named ``session``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr == "session"
    return isinstance(node, ast.Name) and node.id == "session"


def session_endings(source: str, where: str) -> list[str]:
    """``file:line`` of every ``commit()``/``rollback()`` called on the engine's session."""
    return [f"{where}:{node.lineno}: {ast.unparse(node)} ends a transaction the plugin may not own "
            f"(use transaction(), end_read() or reset_session() from {PUBLIC})"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ENDING
            and _names_session(node.func.value)]


def _walk(check) -> list[str]:
    found = []
    for path in _modules():
        found.extend(check(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))))
    return found


def test_the_walk_sees_every_bundled_plugin():
    packages = {p.relative_to(PLUGINS).parts[0] for p in _modules()}
    assert {"accounting_export", "carrier_generic", "channel_webhook", "crm_salesforce", "notify_email",
            "payments_stripe"} <= packages
    assert any("migrations" in p.parts for p in _modules())  # the migrations are walked too


def test_bundled_plugins_import_only_the_public_plugin_api():
    assert _walk(import_violations) == []


def test_the_import_check_names_file_and_line():
    source = ("import json\nfrom engine.db import db\nimport engine.models\nfrom engine.plugin_api import transaction\n"
              "from engine.plugin_api import before_outside_call\nfrom . import models\n"
              "def later():\n    from engine.services import orders\n"
              "    importlib.import_module('engine.jobs')\n")
    assert import_violations(source, "x.py") == [
        "x.py:2: from engine.db import ... (import from engine.plugin_api only)",
        "x.py:3: import engine.models (import from engine.plugin_api only)",
        "x.py:5: before_outside_call is not in engine.plugin_api.__all__",
        "x.py:8: from engine.services import ... (import from engine.plugin_api only)",
        "x.py:9: imports engine.jobs dynamically",
    ]


def test_every_public_name_exists():
    assert [name for name in plugin_api.__all__ if not hasattr(plugin_api, name)] == []
    assert len(plugin_api.__all__) == len(set(plugin_api.__all__))


def test_bundled_plugins_never_commit_or_roll_back_the_engine_session():
    assert _walk(session_endings) == []


def test_the_session_check_catches_the_real_patterns():
    source = ("db.session.commit()\ndb.session.rollback()\ndb.session().commit()\nsession.rollback()\n"
              "self.db.session.commit()\nconn.commit()\nwith transaction():\n    end_read()\n")
    assert [line.split(":")[1] for line in session_endings(source, "x.py")] == ["1", "2", "3", "4", "5"]


# --------------------------------------------------------------------------- the transaction rule, run


def _stripe_latest(app):
    from plugins.payments_stripe.provider import latest_operation

    return latest_operation(1, "intent")


def _stripe_intents(app):
    from plugins.payments_stripe.provider import intent_rows

    return intent_rows(1)


def _webhook_send(app):
    from plugins.channel_webhook.outbound import send

    return send([1], utcnow())  # the retry queue's run of held tasks: a read, then the outside call


def _accounting_payload(app):
    from plugins.accounting_export.sync import payload

    return payload([])


def _notify_send_due(app):
    from plugins.notify_email.sending import send_due

    return send_due(utcnow() + timedelta(days=1))


def _reset_session(app):
    return reset_session()


READS = [_stripe_latest, _stripe_intents, _webhook_send, _accounting_payload, _notify_send_due, _reset_session]


@pytest.mark.parametrize("plugin_call", READS, ids=lambda f: f.__name__.lstrip("_"))
def test_plugin_code_inside_the_cores_transaction_leaves_it_open(app, plugin_call):
    """Plugin code that ends its own reads (before an HTTP or SMTP call) or recovers from an error, run
    inside a transaction the core opened, neither commits nor rolls back that transaction: the core's
    write is undone when the core's block fails, and kept when it succeeds."""
    with app.app_context():
        with pytest.raises(RuntimeError), transaction():
            record_once("boundary-test", "undone")
            plugin_call(app)
            assert db.session().in_transaction()
            raise RuntimeError("the core's use case fails after the plugin ran")
        assert inbox_seen("boundary-test", "undone") is None
        with transaction():
            record_once("boundary-test", "kept")
            plugin_call(app)
        assert inbox_seen("boundary-test", "kept") is not None


def test_end_read_and_reset_session_end_only_a_plain_read(app):
    with app.app_context():
        inbox_seen("boundary-test", "read")
        assert db.session().in_transaction()
        end_read()
        assert not db.session().in_transaction()
        inbox_seen("boundary-test", "read")
        reset_session()
        assert not db.session().in_transaction()
