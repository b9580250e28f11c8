"""Which location an order's units come from (the allocation rule), and the pick list (issue #11)."""

from __future__ import annotations

from conftest import place, product, receive
from invariants import check_stock_invariants
from sqlalchemy import select

from engine.db import db
from engine.models import Location, Reservation


def reserved_at(app, order_id) -> list[tuple[str, int]]:
    """(location path, units) of the order's open reservations, in path order."""
    with app.app_context():
        rows = db.session.execute(select(Location.code, Reservation.quantity).join(
            Location, Location.id == Reservation.location_id).where(
            Reservation.order_id == order_id, Reservation.status == "open").order_by(Location.code)).all()
        db.session.rollback()
        return [tuple(r) for r in rows]


def locations(api, *paths, **extra):
    for path in paths:
        assert api.post("/locations", {"path": path, **extra}).status_code == 201


def test_a_location_that_can_give_the_whole_line_wins_over_a_bigger_split(api, app):
    product(api, "MUG")
    locations(api, "MAIN/A-01", "MAIN/B-01")
    receive(api, "MUG", 4, location="MAIN/A-01")
    receive(api, "MUG", 3, location="MAIN/B-01")
    order = place(api, [("MUG", 3)])
    # both can give 3: the most stocked first
    assert reserved_at(app, order["id"]) == [("MAIN/A-01", 3)]
    # now A-01 has 1, B-01 has 3: B-01 gives the whole line although A-01 comes first by path
    order = place(api, [("MUG", 2)], email="bob@example.com")
    assert reserved_at(app, order["id"]) == [("MAIN/B-01", 2)]


def test_a_line_no_location_can_give_whole_is_split_most_stocked_first(api, app):
    product(api, "MUG")
    locations(api, "MAIN/A-01", "MAIN/B-01", "MAIN/C-01")
    receive(api, "MUG", 2, location="MAIN/A-01")
    receive(api, "MUG", 5, location="MAIN/B-01")
    receive(api, "MUG", 1, location="MAIN/C-01")
    order = place(api, [("MUG", 7)])
    assert reserved_at(app, order["id"]) == [("MAIN/A-01", 2), ("MAIN/B-01", 5)]


def test_ties_go_by_location_path(api, app):
    product(api, "MUG")
    locations(api, "MAIN/B-01", "MAIN/A-01")
    receive(api, "MUG", 3, location="MAIN/B-01")
    receive(api, "MUG", 3, location="MAIN/A-01")
    order = place(api, [("MUG", 2)])
    assert reserved_at(app, order["id"]) == [("MAIN/A-01", 2)]


def test_quarantine_and_unpickable_locations_are_never_allocated(api, app):
    product(api, "MUG", allow_backorder=True)
    locations(api, "MAIN/Q", kind="quarantine")
    locations(api, "MAIN/A-01", "MAIN/RECV")
    assert api.patch("/locations/MAIN/RECV", {"pickable": False}).status_code == 200
    receive(api, "MUG", 50, location="MAIN/Q")
    receive(api, "MUG", 50, location="MAIN/RECV")
    receive(api, "MUG", 1, location="MAIN/A-01")
    order = place(api, [("MUG", 3)])
    assert order["status"] == "on_hold" and order["lines"][0]["backordered"] == 2
    assert reserved_at(app, order["id"]) == [("MAIN/A-01", 1)]
    with app.app_context():
        check_stock_invariants()


def test_the_pick_list_walks_the_locations_in_path_order(api, app):
    product(api, "MUG", barcode="4006381333948")
    product(api, "CAP")
    product(api, "PHONE", track_serials=True)
    locations(api, "MAIN/B-02", "MAIN/A-01")
    receive(api, "MUG", 2, location="MAIN/B-02")
    receive(api, "MUG", 3, location="MAIN/A-01")
    receive(api, "CAP", 4, location="MAIN/A-01")
    receive(api, "PHONE", 1, serials=["P-1"])
    order = place(api, [("MUG", 5), ("CAP", 1), ("PHONE", 1)], gift=True)
    body = api.get(f"/orders/{order['id']}/pick-list").get_json()
    assert (body["number"], body["gift"], body["vip"], body["units"], body["to_pick"]) == (
        order["number"], True, False, 7, 7)
    assert "gift" in body["flags"]
    assert [(s["location"], s["sku"], s["quantity"], s["picked"], s["to_pick"]) for s in body["stops"]] == [
        ("MAIN", "PHONE", 1, 0, 1),
        ("MAIN/A-01", "CAP", 1, 0, 1),
        ("MAIN/A-01", "MUG", 3, 0, 3),
        ("MAIN/B-02", "MUG", 2, 0, 2),
    ]
    mug = body["stops"][2]
    assert (mug["name"], mug["barcode"], mug["kind"]) == ("Mug", "4006381333948", "bin")

    assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    assert api.post(f"/orders/{order['id']}/pick", {"scans": ["MUG"] * 4}).status_code == 200
    stops = api.get(f"/orders/{order['id']}/pick-list").get_json()["stops"]
    # the line's 4 picked units count against its stops in walk order
    assert [(s["sku"], s["picked"], s["to_pick"]) for s in stops] == [
        ("PHONE", 0, 1), ("CAP", 0, 1), ("MUG", 3, 0), ("MUG", 1, 1)]


def test_the_pick_list_of_a_cancelled_or_unknown_order(api):
    product(api, "MUG")
    receive(api, "MUG", 1)
    order = place(api, [("MUG", 1)])
    assert api.post(f"/orders/{order['id']}/cancel", {}).status_code == 200
    body = api.get(f"/orders/{order['id']}/pick-list").get_json()
    assert (body["status"], body["stops"], body["to_pick"]) == ("cancelled", [], 0)
    assert api.get("/orders/999999/pick-list").status_code == 404


def test_the_service_keeps_each_stops_reservations(api, app):
    product(api, "MUG")
    locations(api, "MAIN/A-01")
    receive(api, "MUG", 1, location="MAIN/A-01")
    receive(api, "MUG", 1)
    order = place(api, [("MUG", 2)])
    from engine.services import locations as service

    with app.app_context():
        stops = service.pick_list(order["id"])["stops"]
        ids = {res.location_id: res.id for res in db.session.execute(
            select(Reservation).where(Reservation.order_id == order["id"])).scalars()}
        paths = dict(db.session.execute(select(Location.id, Location.code)).all())
        assert {s.location: s.reservation_ids for s in stops} == {paths[k]: [v] for k, v in ids.items()}


def test_the_pick_list_names_the_serial_units_held_for_each_stop(api, app):
    product(api, "PHONE", price=59900, track_serials=True)
    receive(api, "PHONE", 2, serials=["SN-1", "SN-2"], location="MAIN/A-01")
    receive(api, "PHONE", 1, serials=["SN-9"], location="MAIN/B-01")
    order = place(api, [("PHONE", 2)])
    stops = api.get(f"/orders/{order['id']}/pick-list").get_json()["stops"]
    assert [(s["location"], s["quantity"], s["serials"]) for s in stops] == [("MAIN/A-01", 2, ["SN-1", "SN-2"])]
    # a picked unit leaves the held list; the stop still counts it as picked
    assert api.post(f"/orders/{order['id']}/pay").status_code == 200
    assert api.post(f"/orders/{order['id']}/pick", {"scans": ["SN-2"]}).status_code == 200
    stop = api.get(f"/orders/{order['id']}/pick-list").get_json()["stops"][0]
    assert (stop["picked"], stop["to_pick"], stop["serials"]) == (1, 1, ["SN-1"])
