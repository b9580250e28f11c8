"""The retry queue's admin screen (``/admin/tasks``, owner only): counts per kind and status, dead tasks first
with their last error, and requeueing one dead task or all dead tasks of a kind — the same as
``hookshop tasks requeue``."""

from __future__ import annotations

import re

import pytest
from conftest import live_server, make_app
from test_retry_queue import OTHER_LISTENERS, Kinds

from engine import retry_queue
from engine.db import db, transaction
from engine.models import RetryTask

from .conftest import browser_login, make_staff, screenshot


@pytest.fixture
def kinds():
    return Kinds()


@pytest.fixture
def app(database, tmp_path, request, kinds):
    app = make_app(database, tmp_path, request, PLUGINS_DISABLED=OTHER_LISTENERS, EXTRA_PLUGINS=[("kinds", kinds)])
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def tasks(app) -> dict[str, RetryTask]:
    with app.app_context():
        found = {t.key: t for t in db.session.execute(db.select(RetryTask)).scalars()}
        db.session.remove()
    return found


def dead_tasks(app, kinds, *keys):
    kinds.plan.update({key: "final" for key in keys})
    with app.app_context():
        with transaction():
            for key in keys:
                retry_queue.enqueue("test.echo", key, {})
            retry_queue.enqueue("test.echo", "fine", {})
        retry_queue.run_due()
        db.session.remove()
    found = tasks(app)
    assert [found[k].status for k in keys] == ["dead"] * len(keys) and found["fine"].status == "done"
    return found


def test_the_owner_sees_dead_tasks_with_their_error_and_requeues_one(app, kinds, staff_client):
    found = dead_tasks(app, kinds, "a", "b")
    owner = staff_client("owner")
    page = owner.get("/admin/tasks")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Retry queue" in html
    assert f'data-task="{found["a"].id}" data-status="dead"' in html and "final a" in html
    assert f'data-task="{found["fine"].id}"' not in html  # the default filter: dead tasks only
    assert '<td class="num" data-status="dead">2</td>' in html and '<td class="num" data-status="done">1</td>' in html

    answer = owner.post("/admin/tasks/requeue", {"task_id": str(found["a"].id), "status": "dead"})
    assert answer.status_code == 303 and "/admin/tasks?status=dead" in answer.headers["Location"]
    after = tasks(app)
    assert after["a"].status == "pending" and after["a"].attempts == 0 and after["b"].status == "dead"
    assert kinds.requeued == ["a"]
    assert "1 task(s) requeued" in owner.get("/admin/tasks").get_data(as_text=True)

    # a task that is not dead is not requeued again: the screen says so
    again = owner.post("/admin/tasks/requeue", {"task_id": str(found["a"].id)}, follow_redirects=True)
    assert "Nothing to requeue" in again.get_data(as_text=True) and kinds.requeued == ["a"]


def test_all_dead_tasks_of_a_kind_are_requeued_at_once(app, kinds, staff_client):
    dead_tasks(app, kinds, "a", "b", "c")
    owner = staff_client("owner")
    assert "Requeue all dead" in owner.get("/admin/tasks").get_data(as_text=True)
    assert owner.post("/admin/tasks/requeue", {"kind": "test.echo"}).status_code == 303
    after = tasks(app)
    assert {k: t.status for k, t in after.items()} == {"a": "pending", "b": "pending", "c": "pending", "fine": "done"}
    listed = owner.get("/admin/tasks?status=pending&kind=test.echo").get_data(as_text=True)
    assert all(f'data-task="{after[k].id}" data-status="pending"' in listed for k in "abc")


@pytest.mark.parametrize("role", ["warehouse", "accounting", "customer_service"])
def test_only_the_owner_sees_or_requeues_tasks(app, kinds, staff_client, role):
    found = dead_tasks(app, kinds, "a")
    user = staff_client(role)
    assert user.get("/admin/tasks").status_code == 403
    assert user.post("/admin/tasks/requeue", {"task_id": str(found["a"].id)}).status_code == 403
    assert "/admin/tasks" not in user.get("/admin/").get_data(as_text=True)
    assert tasks(app)["a"].status == "dead"


def test_a_requeue_without_a_csrf_token_changes_nothing(app, kinds, staff_client):
    found = dead_tasks(app, kinds, "a")
    answer = staff_client("owner").post("/admin/tasks/requeue", {"task_id": str(found["a"].id)}, csrf=False)
    assert answer.status_code == 400 and tasks(app)["a"].status == "dead"


@pytest.mark.parametrize("database", ["sqlite"])  # the browser checks the screen, not the SQL
def test_the_screen_in_a_browser(app, kinds, browser):
    found = dead_tasks(app, kinds, "a", "b")
    email = make_staff(app, "owner")
    with live_server(app) as base:
        page = browser.new_page()
        browser_login(page, base, email)
        page.get_by_role("link", name="Retry queue", exact=True).click()
        page.wait_for_url(re.compile(r"/admin/tasks$"))
        assert page.locator('#task-counts tr[data-kind="test.echo"] td[data-status="dead"]').inner_text() == "2"
        row = page.locator(f'#tasks tr[data-task="{found["a"].id}"]')
        assert "final a" in row.inner_text()
        screenshot(page, "retry-queue")
        row.get_by_role("button", name="Requeue").click()
        page.wait_for_url(re.compile(r"/admin/tasks\?status=dead"))
        assert page.get_by_text("1 task(s) requeued").is_visible()
        assert page.locator(f'#tasks tr[data-task="{found["a"].id}"]').count() == 0  # no longer dead
        assert page.locator(f'#tasks tr[data-task="{found["b"].id}"]').count() == 1
        page.close()
    assert tasks(app)["a"].status == "pending"
