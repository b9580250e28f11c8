"""notify_email against the kit's StageHookContract: a stage delivered again sends no second e-mail."""

from sqlalchemy import text

from engine.testing.contracts import StageHookContract


class TestNotifications(StageHookContract):
    plugin_name = "notify_email"

    def observe(self, app):
        from engine.db import db

        with app.app_context():
            rows = db.session.execute(text("SELECT event_key, template, recipient FROM notify_email_messages "
                                           "ORDER BY id")).all()
            db.session.remove()
        assert rows  # the life's e-mails were written
        return [tuple(row) for row in rows]
