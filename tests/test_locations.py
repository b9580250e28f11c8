"""Locations as paths: GET/POST/PATCH /locations, the path format, receipts into paths (issue #11)."""

from __future__ import annotations

import pytest
from conftest import product, receive
from sqlalchemy import func, select

from engine.db import db
from engine.models import Location


def create(api, path, expect=201, **extra):
    resp = api.post("/locations", {"path": path, **extra})
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def location_count(app) -> int:
    with app.app_context():
        count = db.session.execute(select(func.count()).select_from(Location)).scalar()
        db.session.rollback()
        return count


def test_a_warehouse_and_its_bins_are_created_by_path(api):
    assert create(api, "WEST") == {"path": "WEST", "name": "WEST", "kind": "warehouse", "warehouse": "WEST",
                                   "parent": None, "pickable": True, "on_hand": 0, "reserved": 0, "available": 0}
    bin_ = create(api, "WEST/A-01-3", name="Aisle A")
    assert (bin_["kind"], bin_["parent"], bin_["warehouse"], bin_["pickable"]) == ("bin", "WEST", "WEST", True)
    quarantine = create(api, "WEST/QUARANTINE", kind="quarantine")
    assert (quarantine["kind"], quarantine["pickable"]) == ("quarantine", False)
    # inside a non-pickable place a bin is not pickable unless it says so
    assert create(api, "WEST/QUARANTINE/Q-1")["pickable"] is False
    assert create(api, "WEST/RECV", kind="receiving")["pickable"] is False


def test_main_always_exists_and_holds_bins(api):
    bin_ = create(api, "MAIN/A-01")
    assert bin_["parent"] == "MAIN"
    assert api.get("/locations/MAIN").get_json()["kind"] == "warehouse"


@pytest.mark.parametrize("body, field, code", [
    ({"path": "main/a-01"}, "path", "invalid_location"),
    ({"path": "MAIN//A"}, "path", "invalid_location"),
    ({"path": "MAIN/A 1"}, "path", "invalid_location"),
    ({"path": "/MAIN"}, "path", "invalid_location"),
    ({"path": "A" * 33}, "path", "invalid_location"),
    ({"path": "/".join(["A"] * 9)}, "path", "invalid_location"),
    ({"path": "NOWHERE/A-01"}, "path", "unknown_location"),
    ({"path": "EAST", "kind": "bin"}, "kind", "validation_error"),
    ({"path": "MAIN/EAST", "kind": "warehouse"}, "kind", "validation_error"),
    ({"path": "MAIN/Q", "kind": "quarantine", "pickable": True}, "pickable", "validation_error"),
    ({"path": "MAIN/Q", "kind": "cellar"}, "kind", "validation_error"),
    ({"path": "MAIN/Q", "colour": "red"}, "colour", "validation_error"),
])
def test_a_bad_location_is_refused_naming_the_field_and_changes_nothing(api, app, body, field, code):
    before = location_count(app)
    resp = api.post("/locations", body)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["code"] == code and field in resp.get_json()["errors"], resp.get_json()
    assert location_count(app) == before


def test_lower_case_paths_get_a_hint(api):
    body = api.post("/locations", {"path": "main/a-01"}).get_json()
    assert "did you mean MAIN/A-01?" in body["message"]


def test_a_duplicate_location_is_a_409(api, app):
    create(api, "MAIN/A-01")
    before = location_count(app)
    resp = api.post("/locations", {"path": "MAIN/A-01"})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "location_exists")
    assert location_count(app) == before


def test_listing_walks_paths_in_order_with_stock_totals_and_filters(api):
    product(api, "MUG")
    for path in ("MAIN/B-01", "MAIN/A-01", "WEST", "WEST/A-01", "WEST_2"):
        create(api, path)
    receive(api, "MUG", 5, location="MAIN/A-01")
    receive(api, "MUG", 2)
    items = api.get("/locations").get_json()["items"]
    assert [i["path"] for i in items] == ["MAIN", "MAIN/A-01", "MAIN/B-01", "WEST", "WEST/A-01", "WEST_2"]
    assert {i["path"]: i["on_hand"] for i in items}["MAIN/A-01"] == 5
    # the warehouse filter is a path prefix: WEST_2 is another warehouse (_ is no wildcard)
    west = api.get("/locations?warehouse=WEST").get_json()["items"]
    assert [i["path"] for i in west] == ["WEST", "WEST/A-01"]
    assert [i["path"] for i in api.get("/locations?kind=warehouse").get_json()["items"]] == ["MAIN", "WEST",
                                                                                             "WEST_2"]
    first = api.get("/locations?limit=4").get_json()
    assert first["next_cursor"] == "WEST"
    rest = api.get(f"/locations?limit=4&cursor={first['next_cursor']}").get_json()
    assert [i["path"] for i in rest["items"]] == ["WEST/A-01", "WEST_2"] and rest["next_cursor"] is None


def test_a_location_shows_the_stock_held_there(api):
    product(api, "MUG")
    product(api, "CAP")
    receive(api, "MUG", 5, location="MAIN/A-01")
    receive(api, "CAP", 1, location="MAIN/A-01")
    body = api.get("/locations/MAIN/A-01").get_json()
    assert (body["path"], body["on_hand"], body["stock_truncated"]) == ("MAIN/A-01", 6, False)
    assert [(s["sku"], s["on_hand"], s["available"]) for s in body["stock"]] == [("CAP", 1, 1), ("MUG", 5, 5)]
    assert api.get("/locations/MAIN/NOPE").status_code == 404
    assert api.get("/locations/" + "A" * 65).status_code == 404


def test_patch_switches_pickable_but_never_for_quarantine(api):
    create(api, "MAIN/A-01")
    create(api, "MAIN/Q", kind="quarantine")
    resp = api.patch("/locations/MAIN/A-01", {"pickable": False, "name": "broken shelf"})
    assert resp.status_code == 200 and resp.get_json()["pickable"] is False
    assert resp.get_json()["name"] == "broken shelf"
    resp = api.patch("/locations/MAIN/Q", {"pickable": True})
    assert resp.status_code == 422 and "pickable" in resp.get_json()["errors"]
    assert api.get("/locations/MAIN/Q").get_json()["pickable"] is False
    assert api.patch("/locations/MAIN/NOPE", {"pickable": True}).status_code == 404


def test_a_receipt_creates_a_bin_under_a_known_warehouse_but_refuses_an_unknown_one(api, app):
    product(api, "MUG")
    receive(api, "MUG", 2, location="MAIN/C-07")
    assert api.get("/locations/MAIN/C-07").get_json()["kind"] == "bin"
    receive(api, "MUG", 1, location="BACK")  # v1: a one-segment code is a new warehouse
    assert api.get("/locations/BACK").get_json()["kind"] == "warehouse"
    before = location_count(app)
    for location, code in (("NOWHERE/A-1", "unknown_location"), ("main/x", "invalid_location")):
        resp = api.post("/stock/receipts", {"sku": "MUG", "quantity": 1, "location": location})
        assert (resp.status_code, resp.get_json()["code"]) == (422, code), resp.get_json()
        assert "location" in resp.get_json()["errors"]
    assert location_count(app) == before
    assert api.get("/stock/MUG").get_json()["on_hand"] == 3
