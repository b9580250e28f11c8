"""The catalog: GET /products (pages, search, archived), PATCH /products/{sku}, archived products, barcodes.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import pytest
from conftest import order_body, place, product, receive, stock_of
from test_api_errors import assert_error
from test_concurrency import answer, app_config, together  # noqa: F401 - app_config: a pool for the threads
from test_statement_count import counting, show

from engine.db import db
from engine.models import Product

EAN13, UPCA, EAN8, GTIN14 = "4006381333931", "036000291452", "96385074", "10012345678902"


def wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def skus(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [item["sku"] for item in resp.get_json()["items"]]


# ------------------------------------------------------------------------------ GET /products


def test_products_are_listed_newest_first_in_cursor_pages(api):
    for i in range(7):
        product(api, f"P-{i}")
    first = api.get("/products?limit=3").get_json()
    assert [p["sku"] for p in first["items"]] == ["P-6", "P-5", "P-4"]
    assert first["next_cursor"] == str(first["items"][-1]["id"])
    second = api.get(f"/products?limit=3&cursor={first['next_cursor']}").get_json()
    assert [p["sku"] for p in second["items"]] == ["P-3", "P-2", "P-1"]
    last = api.get(f"/products?limit=3&cursor={second['next_cursor']}").get_json()
    assert [p["sku"] for p in last["items"]] == ["P-0"] and last["next_cursor"] is None
    everything = api.get("/products").get_json()  # default limit 50
    assert len(everything["items"]) == 7 and everything["next_cursor"] is None
    assert set(everything["items"][0]) >= {"sku", "name", "price", "barcode", "archived", "archived_at"}


def test_search_matches_part_of_the_sku_name_or_barcode_in_any_case(api):
    product(api, "MUG-RED", name="Red mug")
    product(api, "CAP-1", name="Baseball cap", barcode=EAN13)
    product(api, "TEE-XL", name="Übergröße shirt")
    product(api, "PCT", name="100% cotton_tee")
    product(api, "PLAIN", name="Plain")
    assert skus(api.get("/products?q=mug")) == ["MUG-RED"]      # the sku, other case
    assert skus(api.get("/products?q=BASEBALL")) == ["CAP-1"]   # the name
    assert skus(api.get("/products?q=0063813")) == ["CAP-1"]    # part of the barcode
    assert skus(api.get("/products?q=ÜBERGRÖSSE")) == []  # lower case, not Unicode case folding (ß)
    assert skus(api.get("/products?q=ÜBERgröße")) == ["TEE-XL"]  # not only ASCII letters fold
    assert skus(api.get("/products?q=E")) == ["PCT", "TEE-XL", "CAP-1", "MUG-RED"]  # not PLAIN
    # LIKE's wildcards are characters like any other
    assert skus(api.get("/products?q=0%25")) == ["PCT"]
    assert skus(api.get("/products?q=n_t")) == ["PCT"]
    assert skus(api.get("/products?q=_")) == ["PCT"]
    assert skus(api.get("/products?q=%25%25")) == []
    assert skus(api.get("/products?q=nothing-like-it")) == []


def test_archived_products_are_listed_apart(api):
    for sku in ("OLD-1", "LIVE-1", "OLD-2", "LIVE-2"):
        product(api, sku)
    for sku in ("OLD-1", "OLD-2"):
        assert api.patch(f"/products/{sku}", {"archived": True}).status_code == 200
    assert skus(api.get("/products")) == ["LIVE-2", "LIVE-1"]
    assert skus(api.get("/products?archived=false")) == ["LIVE-2", "LIVE-1"]
    assert skus(api.get("/products?archived=true")) == ["OLD-2", "OLD-1"]
    assert skus(api.get("/products?archived=true&q=2")) == ["OLD-2"]
    page = api.get("/products?archived=true&limit=1").get_json()
    assert skus(api.get(f"/products?archived=true&cursor={page['next_cursor']}")) == ["OLD-1"]


@pytest.mark.parametrize("query, field", [
    ("archived=1", "archived"), ("archived=yes", "archived"), ("limit=0", "limit"), ("limit=501", "limit"),
    ("limit=1.5", "limit"), ("cursor=abc", "cursor"), ("cursor=-1", "cursor"), ("q=", "q"), ("q=" + "x" * 101, "q"),
    ("sku=MUG", "sku"),
])
def test_bad_listing_queries_are_422_naming_the_parameter(api, query, field):
    errors = assert_error(api.get(f"/products?{query}"), 422, "validation_error")
    assert field in errors, errors


def test_a_page_of_products_costs_the_same_statements_at_any_catalog_size(api, app, database):
    def add(start, stop):
        with app.app_context():
            db.session.add_all(Product(sku=f"BULK-{i}", name=f"Bulk {i}", price=100, currency="EUR",
                                       archived_at=db.func.now() if i % 5 == 0 else None) for i in range(start, stop))
            db.session.commit()

    listings = ["", "archived=true", "q=bulk", "q=BULK-1", "q=nothing", "archived=true&q=5", "cursor={deep}"]
    counts: dict[str, list[int]] = {}
    for start, stop in ((0, 30), (30, 600)):
        add(start, stop)
        with app.app_context():
            deep = db.session.execute(db.select(db.func.max(Product.id))).scalar() // 2
        for listing in listings:
            with counting(app) as statements:
                resp = api.get(f"/products?limit=20&{listing.format(deep=deep)}")
            assert resp.status_code == 200, resp.get_json()
            counts.setdefault(listing, []).append(len(statements))
            if stop == 600 and listing == "q=bulk":
                show("GET /products?q=bulk&limit=20 at 600 products", database, statements)
    for listing, (small, large) in counts.items():
        assert small == large, f"{listing or 'no filter'}: {small} statements at 30 products, {large} at 600"
        assert large <= 4, (listing, large)
    # and a page of 500 costs what a page of 5 does
    with counting(app) as five:
        api.get("/products?limit=5")
    with counting(app) as many:
        assert len(api.get("/products?limit=500").get_json()["items"]) == 480
    assert len(five) == len(many)


# ------------------------------------------------------------------------------ PATCH /products/{sku}


@pytest.mark.parametrize("field, value", [
    ("name", "Big mug"), ("price", 1590), ("barcode", EAN13), ("barcode", "SHOP-0042"), ("weight_grams", 350),
    ("reorder_point", 5), ("reorder_quantity", 40), ("allow_backorder", True), ("unit_cost", 410),
    ("unit_cost", None), ("track_serials", True),
])
def test_patch_changes_one_field_and_leaves_the_others(api, field, value):
    before = product(api, "MUG", price=1290, barcode=UPCA, unit_cost=300)
    resp = api.patch("/products/MUG", {field: value})
    assert resp.status_code == 200, resp.get_json()
    after = resp.get_json()
    assert after[field] == value
    assert {k: v for k, v in after.items() if k != field} == {k: v for k, v in before.items() if k != field}
    assert api.get("/products/MUG").get_json() == after


def test_patch_changes_several_fields_at_once_and_an_empty_patch_changes_nothing(api):
    before = product(api, "MUG", barcode=EAN13)
    assert api.patch("/products/MUG", {}).get_json() == before
    after = api.patch("/products/MUG", {"name": "Mug XL", "price": 1, "barcode": None}).get_json()
    assert (after["name"], after["price"], after["barcode"]) == ("Mug XL", 1, None)
    product(api, "CUP", barcode=EAN13)  # the barcode the mug gave up is free again


@pytest.mark.parametrize("body, field", [
    ({"sku": "OTHER"}, "sku"), ({"currency": "USD"}, "currency"), ({"colour": "red"}, "colour"),
    ({"price": "1590"}, "price"), ({"price": 15.9}, "price"), ({"price": -1}, "price"), ({"price": None}, "price"),
    ({"price": 10**12 + 1}, "price"), ({"name": ""}, "name"), ({"name": "x" * 201}, "name"), ({"name": None}, "name"),
    ({"weight_grams": 10**9 + 1}, "weight_grams"), ({"weight_grams": True}, "weight_grams"),
    ({"reorder_point": -1}, "reorder_point"), ({"reorder_quantity": 2.0}, "reorder_quantity"),
    ({"allow_backorder": 1}, "allow_backorder"), ({"allow_backorder": "true"}, "allow_backorder"),
    ({"archived": 0}, "archived"), ({"archived": None}, "archived"), ({"track_serials": "no"}, "track_serials"),
    ({"unit_cost": -5}, "unit_cost"), ({"barcode": ""}, "barcode"), ({"barcode": " MUG"}, "barcode"),
    ({"barcode": "x" * 65}, "barcode"), ({"barcode": "MÜG"}, "barcode"),
])
def test_a_bad_patch_is_422_naming_the_field_and_changes_nothing(api, body, field):
    before = product(api, "MUG")
    errors = assert_error(api.patch("/products/MUG", body), 422, "validation_error")
    assert field in errors, errors
    assert api.get("/products/MUG").get_json() == before


def test_patching_an_unknown_product_is_404_broken_json_400_and_no_body_422(api):
    assert_error(api.patch("/products/NOPE", {"price": 1}), 404, "not_found")
    product(api, "MUG")
    resp = api.client.patch("/api/v1/products/MUG", data="{", content_type="application/json",
                            headers={"Authorization": f"Bearer {api.key}"})
    assert_error(resp, 400, "invalid_json")
    for data, content_type in ((None, None), ("", "application/json"), ("price=1", "application/x-www-form-urlencoded")):
        resp = api.client.patch("/api/v1/products/MUG", data=data, content_type=content_type,
                                headers={"Authorization": f"Bearer {api.key}"})
        assert "_body" in assert_error(resp, 422, "validation_error")


def test_a_patch_needs_the_write_scope(app, api):
    from conftest import ApiClient, new_key

    product(api, "MUG")
    reader = ApiClient(app.test_client(), new_key(app, scopes=("read",), name="reader"))
    assert reader.get("/products").status_code == 200
    assert_error(reader.patch("/products/MUG", {"price": 1}), 403, "forbidden")


def test_a_duplicate_barcode_is_409_and_changes_nothing(api):
    product(api, "MUG", barcode=EAN13)
    before = product(api, "CAP")
    errors = assert_error(api.patch("/products/CAP", {"barcode": EAN13, "price": 5}), 409, "duplicate_barcode")
    assert set(errors) == {"barcode"}
    assert api.get("/products/CAP").get_json() == before
    # giving a product the barcode it already has is no clash
    assert api.patch("/products/MUG", {"barcode": EAN13}).status_code == 200


def test_a_new_price_leaves_existing_orders_as_they_were_placed(api):
    product(api, "MUG", price=1290)
    receive(api, "MUG", 10)
    old = place(api, [("MUG", 2)])
    assert api.patch("/products/MUG", {"price": 1590, "name": "Mug (new)"}).status_code == 200
    again = api.get(f"/orders/{old['id']}").get_json()
    assert again["lines"][0]["unit_price"] == 1290 and again["lines"][0]["name"] == old["lines"][0]["name"]
    assert again["totals"] == old["totals"]
    assert api.post(f"/orders/{old['id']}/pay").get_json()["totals"]["paid"] == 2580  # paid at the old price
    new = place(api, [("MUG", 1)])
    assert new["lines"][0]["unit_price"] == 1590 and new["lines"][0]["name"] == "Mug (new)"


def test_track_serials_switches_only_while_the_product_has_no_stock_or_serials(api):
    product(api, "MUG")
    assert api.patch("/products/MUG", {"track_serials": True}).get_json()["track_serials"] is True
    assert api.patch("/products/MUG", {"track_serials": False}).get_json()["track_serials"] is False
    receive(api, "MUG", 2)
    resp = api.patch("/products/MUG", {"track_serials": True, "price": 1})
    errors = assert_error(resp, 409, "product_has_stock")
    assert "2 units on hand" in resp.get_json()["message"] and "track_serials" in errors
    assert api.get("/products/MUG").get_json()["price"] == 1000  # nothing changed
    assert api.patch("/products/MUG", {"track_serials": False}).status_code == 200  # no switch: no question

    product(api, "PHONE", track_serials=True)
    receive(api, "PHONE", 1, serials=["P-1"])
    order = place(api, [("PHONE", 1)])
    assert_error(api.patch("/products/PHONE", {"track_serials": False}), 409, "product_has_stock")  # reserved
    for step, body in (("pay", {}), ("pick", {"scans": ["P-1"]}), ("confirm", {}), ("pack", {"scans": ["P-1"]}),
                       ("ship", {"carrier": "generic", "service": "standard"})):
        assert api.post(f"/orders/{order['id']}/{step}", body).status_code == 200, step
    assert stock_of(api, "PHONE")["on_hand"] == 0
    resp = api.patch("/products/PHONE", {"track_serials": False})  # no stock, but a serial's history
    assert_error(resp, 409, "product_has_stock")
    assert "1 serial units" in resp.get_json()["message"]


# ------------------------------------------------------------------------------ archived products


def test_an_archived_product_cannot_be_ordered_and_keeps_its_history(api):
    product(api, "MUG", price=1290)
    product(api, "CAP", price=1500)
    receive(api, "MUG", 10)
    receive(api, "CAP", 10)
    earlier = place(api, [("CAP", 1), ("MUG", 2)])
    archived = api.patch("/products/MUG", {"archived": True}).get_json()
    assert archived["archived"] is True and archived["archived_at"]

    resp = api.post("/orders", order_body([("CAP", 1), ("MUG", 1)]))
    errors = assert_error(resp, 422, "product_archived")
    assert errors == {"lines": {"1": {"sku": ["MUG is archived: it can no longer be ordered"]}}}
    assert "MUG" in resp.get_json()["message"]
    # with an unknown sku beside it: the general code, each line named
    errors = assert_error(api.post("/orders", order_body([("NOPE", 1), ("MUG", 1)])), 422, "validation_error")
    assert set(errors["lines"]) == {"0", "1"}
    assert stock_of(api, "MUG")["reserved"] == 2  # nothing was reserved by the refused orders

    # its history: the product, its stock and the earlier order, which still goes through every stage
    assert api.get("/products/MUG").get_json()["archived"] is True
    assert stock_of(api, "MUG") == {**stock_of(api, "MUG"), "on_hand": 10, "reserved": 2, "available": 8}
    oid = earlier["id"]
    for step, body in (("pay", {}), ("pick", {"scans": ["CAP", "MUG", "MUG"]}), ("confirm", {}),
                       ("pack", {"scans": ["CAP", "MUG", "MUG"]}), ("ship", {"carrier": "generic",
                                                                             "service": "standard"}),
                       ("deliver", {})):
        resp = api.post(f"/orders/{oid}/{step}", body)
        assert resp.status_code == 200, (step, resp.get_json())
    assert stock_of(api, "MUG")["on_hand"] == 8
    # archiving again keeps the first date; bringing it back makes it orderable
    assert api.patch("/products/MUG", {"archived": True}).get_json()["archived_at"] == archived["archived_at"]
    back = api.patch("/products/MUG", {"archived": False}).get_json()
    assert back["archived"] is False and back["archived_at"] is None
    place(api, [("MUG", 1)])


def test_an_archived_product_receives_no_stock_until_it_is_brought_back(api):
    product(api, "MUG")
    receive(api, "MUG", 3)
    api.patch("/products/MUG", {"archived": True})
    resp = api.post("/stock/receipts", {"sku": "MUG", "quantity": 5})
    errors = assert_error(resp, 422, "product_archived")
    assert "sku" in errors and "archived: false" in resp.get_json()["message"]
    assert stock_of(api, "MUG")["on_hand"] == 3
    api.patch("/products/MUG", {"archived": False})
    assert receive(api, "MUG", 5)["on_hand"] == 8


def test_a_product_waiting_orders_need_is_not_archived(api):
    product(api, "MUG", allow_backorder=True)
    waiting = place(api, [("MUG", 2)])
    assert waiting["status"] == "on_hold"
    resp = api.patch("/products/MUG", {"archived": True, "name": "Gone"})
    errors = assert_error(resp, 409, "product_backordered")
    assert waiting["number"] in resp.get_json()["message"] and "archived" in errors
    assert api.get("/products/MUG").get_json()["archived"] is False
    assert api.post(f"/orders/{waiting['id']}/cancel", {"reason": "customer gave up"}).status_code == 200
    assert api.patch("/products/MUG", {"archived": True}).status_code == 200


def test_an_archived_product_is_still_exchanged_for_a_return(api):
    product(api, "MUG")
    receive(api, "MUG", 5)
    oid = place(api, [("MUG", 1)])["id"]
    for step, body in (("pay", {}), ("pick", {"scans": ["MUG"]}), ("confirm", {}), ("pack", {"scans": ["MUG"]}),
                       ("ship", {"carrier": "generic", "service": "standard"}), ("deliver", {})):
        assert api.post(f"/orders/{oid}/{step}", body).status_code == 200, step
    api.patch("/products/MUG", {"archived": True})
    ret = api.post(f"/orders/{oid}/returns", {"lines": [{"sku": "MUG", "quantity": 1}], "reason": "chipped",
                                              "resolution": "exchange"})
    assert ret.status_code == 201, ret.get_json()
    received = api.post(f"/returns/{ret.get_json()['id']}/receive", {})
    assert received.status_code == 200, received.get_json()
    replacement = api.get(f"/orders/{received.get_json()['replacement_order_id']}").get_json()
    assert replacement["lines"][0]["sku"] == "MUG" and replacement["replacement_for"] == oid
    assert stock_of(api, "MUG")["on_hand"] == 5  # restocked the return, reserved the replacement


# ------------------------------------------------------------------------------ barcodes


@pytest.mark.parametrize("code, kind", [(EAN13, "EAN-13"), (UPCA, "UPC-A"), (EAN8, "EAN-8"), (GTIN14, "GTIN-14")])
def test_gtins_are_taken_with_a_right_check_digit_only(api, code, kind):
    bad = wrong_check_digit(code)
    resp = api.post("/products", {"sku": "A", "name": "A", "price": 1, "currency": "EUR", "barcode": bad})
    errors = assert_error(resp, 422, "invalid_barcode")
    assert kind in errors["barcode"][0] and "check digit" in errors["barcode"][0]
    assert api.get("/products/A").status_code == 404
    assert product(api, "A", barcode=code)["barcode"] == code
    before = product(api, "B")
    assert_error(api.patch("/products/B", {"barcode": bad, "price": 7}), 422, "invalid_barcode")
    assert api.get("/products/B").get_json() == before


@pytest.mark.parametrize("code", ["12345", "1234567", "123456789", "123456789012345"])
def test_an_all_digit_barcode_must_be_a_gtin_length(api, code):
    errors = assert_error(api.post("/products", {"sku": "A", "name": "A", "price": 1, "currency": "EUR",
                                                 "barcode": code}), 422, "invalid_barcode")
    assert f"not {len(code)}" in errors["barcode"][0]


@pytest.mark.parametrize("code", ["MUG-0042", "A1B2C3", "4006381333932X", "SHOP 17", "~!@#$%^&*()"])
def test_the_shops_own_code128_strings_are_taken(api, code):
    assert product(api, "A", barcode=code)["barcode"] == code
    receive(api, "A", 1)
    oid = place(api, [("A", 1)])["id"]
    api.post(f"/orders/{oid}/pay")
    assert api.post(f"/orders/{oid}/pick", {"scans": [code]}).get_json()["status"] == "picked"


# ------------------------------------------------------------------------------ concurrency


def test_concurrent_patches_of_one_product_leave_a_consistent_row(api, app):
    product(api, "MUG", price=100)
    bodies = [{"name": f"Mug {i}", "price": 1000 + i, "weight_grams": i, "reorder_point": i} for i in range(12)]
    bodies += [{"archived": i % 2 == 0} for i in range(4)]
    results = together(app, api.key, [lambda c, b=b: answer(c.patch("/products/MUG", b)) for b in bodies])
    assert all(status == 200 for status, _ in results), results
    final = api.get("/products/MUG").get_json()
    # the four numbered fields come from one and the same request: no patch was half applied over another
    i = final["weight_grams"]
    assert (final["name"], final["price"], final["reorder_point"]) == (f"Mug {i}", 1000 + i, i)
    # each answer was the row as that patch left it
    for (_, body), sent in zip(results, bodies, strict=True):
        assert all(body[k] == v for k, v in sent.items()), (sent, body)


def test_a_receipt_racing_a_serials_switch_never_leaves_untracked_units_on_a_tracked_product(api, app):
    for round_ in range(4):
        sku = f"RACE-{round_}"
        product(api, sku)
        patch, receipt = together(app, api.key, [
            lambda c, sku=sku: answer(c.patch(f"/products/{sku}", {"track_serials": True})),
            lambda c, sku=sku: answer(c.post("/stock/receipts", {"sku": sku, "quantity": 1})),
        ])
        assert {patch[0], receipt[0]} in ({200, 422}, {409, 201}), (patch, receipt)
        current = api.get(f"/products/{sku}").get_json()
        assert not (current["track_serials"] and stock_of(api, sku)["on_hand"]), (patch, receipt)


def test_an_order_racing_the_archive_is_placed_before_it_or_refused(api, app):
    product(api, "MUG")
    receive(api, "MUG", 50)
    jobs = [lambda c: answer(c.patch("/products/MUG", {"archived": True}))]
    jobs += [lambda c, i=i: answer(c.post("/orders", order_body([("MUG", 1)], email=f"c{i}@example.com")))
             for i in range(6)]
    archive, *orders = together(app, api.key, jobs)
    assert archive[0] == 200
    assert all(status in (201, 422) for status, _ in orders), orders
    placed = sum(status == 201 for status, _ in orders)
    assert stock_of(api, "MUG")["reserved"] == placed
    assert all(body["code"] == "product_archived" for status, body in orders if status == 422)
