"""Rules of the stock state machine (tests/test_stock_properties.py), one mixin per area: the machine
inherits them. A mixin uses the machine's model (``on_hand``, ``serials``, ``reserved``, ``fill_backorders``,
``post``, ``serial_numbers``) and changes it exactly as the engine should; the machine's invariant then
compares the shop with the model and runs the reconciliation after every step. Adding an area: write its
mixin here (or in a module of its own) and add it to the machine's bases."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

STAFF = "machine@shop.example"


class AdjustmentAndCountRules:
    """POST /stock/adjustments and cycle counts of MAIN (open, scan, post or cancel)."""

    TRACKED: frozenset = frozenset()
    SKUS: tuple = ()

    def _serials_of(self, sku: str, *statuses) -> list[str]:
        return sorted(s for s, (owner, status) in self.serials.items() if owner == sku and status in statuses)

    def _at_main(self, sku: str) -> dict:
        """The engine's level of ``sku`` at MAIN (the model keeps totals, not locations)."""
        return next((e for e in self.api.get(f"/stock/{sku}").get_json()["locations"] if e["location"] == "MAIN"),
                    {"on_hand": 0, "reserved": 0})

    def _refill(self, skus) -> None:
        for sku in [s for s in self.SKUS if s in skus]:  # the engine fills backorders in product id order
            self.fill_backorders(sku)

    @rule(data=st.data())
    def adjust(self, data):
        sku = data.draw(st.sampled_from(self.SKUS))
        if sku in self.TRACKED:
            return self._adjust_serial(sku, data)
        quantity = data.draw(st.integers(-3, 3).filter(bool))
        reason = data.draw(st.sampled_from(["found", "count_correction"] if quantity > 0
                                           else ["damage", "loss", "count_correction"]))
        at_main = self._at_main(sku)  # adjusted at MAIN: what transfers moved to the bin is not there to take
        resp = self.post("/stock/adjustments", {"sku": sku, "quantity": quantity, "reason": reason, "staff": STAFF})
        if at_main["on_hand"] + quantity < at_main["reserved"]:
            assert resp.status_code == 409 and resp.get_json()["code"] == "below_reserved", resp.get_json()
            return
        assert resp.status_code == 201, resp.get_json()
        self.on_hand[sku] += quantity
        if quantity > 0:
            self._refill({sku})

    def _adjust_serial(self, sku: str, data):
        at_main = {s for s, code in self.unit_locations(sku).items() if code == "MAIN"}  # adjusted at MAIN
        in_stock = [s for s in self._serials_of(sku, "in_stock") if s in at_main]
        picked = [s for s in self._serials_of(sku, "picked") if s in at_main]
        scrapped = self._serials_of(sku, "scrapped")
        choices = ["found new"] + ["remove"] * bool(in_stock) + ["picked"] * bool(picked) + ["found"] * bool(scrapped)
        action = data.draw(st.sampled_from(choices))
        if action == "picked":  # a picked unit is the order's: refused
            resp = self.post("/stock/adjustments", {"sku": sku, "serials": [data.draw(st.sampled_from(picked))],
                                                    "reason": "loss", "staff": STAFF})
            assert resp.status_code == 409 and resp.get_json()["code"] == "serial_not_in_stock", resp.get_json()
            return
        if action == "remove":
            serial = data.draw(st.sampled_from(in_stock))
            at_main = self._at_main(sku)  # before the adjustment changes it
            resp = self.post("/stock/adjustments", {"sku": sku, "serials": [serial], "staff": STAFF,
                                                    "reason": data.draw(st.sampled_from(["damage", "loss"]))})
            if self.unit_status(serial) == "reserved":  # held for an order (the model counts it in stock)
                assert resp.status_code == 409 and resp.get_json()["code"] == "serial_not_in_stock", resp.get_json()
                return
            if at_main["on_hand"] - 1 < at_main["reserved"]:
                assert resp.status_code == 409 and resp.get_json()["code"] == "below_reserved", resp.get_json()
                return
            assert resp.status_code == 201, resp.get_json()
            self.on_hand[sku] -= 1
            self.serials[serial] = (sku, "scrapped")
            return
        serial = data.draw(st.sampled_from(scrapped)) if action == "found" else f"{sku}-F{next(self.serial_numbers)}"
        resp = self.post("/stock/adjustments", {"sku": sku, "serials": [serial], "reason": "found", "staff": STAFF})
        assert resp.status_code == 201, resp.get_json()
        self.on_hand[sku] += 1
        self.serials[serial] = (sku, "in_stock")
        self._refill({sku})

    @rule(data=st.data(), receive_meanwhile=st.booleans(), cancel=st.sampled_from([False, False, False, True]))
    def count_main(self, data, receive_meanwhile, cancel):
        """Count MAIN: untracked products by quantity, tracked ones by serial (picked units are in the bin)."""
        resp = self.post("/stock/counts", {"location": "MAIN", "staff": STAFF})
        assert resp.status_code == 201, resp.get_json()
        count_id = resp.get_json()["id"]
        if receive_meanwhile:  # stock moving during the count
            self.receive(self.SKUS[0], 1, None)
        # the model keeps totals; where units are (transfers move them between MAIN and a bin) is read
        # from the engine: the count covers what is at MAIN only
        lines, scans, new_on_hand, changes, short = [], [], {}, {}, False
        for sku in self.SKUS:
            at_main = self._at_main(sku)
            if sku in self.TRACKED:
                # units held for an order (the engine reserves them; the model counts them in stock) are in
                # the bin like picked ones: the counter scans them; the free ones may be found missing
                where = self.unit_locations(sku)
                shelf = [s for s in self._serials_of(sku, "in_stock") if where.get(s) == "MAIN"]
                held = [s for s in shelf if self.unit_status(s) == "reserved"]
                free = [s for s in shelf if s not in held]
                kept = data.draw(st.lists(st.sampled_from(free), unique=True)) if free else []
                back = data.draw(st.lists(st.sampled_from(self._serials_of(sku, "scrapped")), unique=True,
                                          max_size=2)) if self._serials_of(sku, "scrapped") else []
                picked = [s for s in self._serials_of(sku, "picked") if where.get(s) == "MAIN"]
                scans += kept + held + back + picked
                counted = len(kept) + len(held) + len(back) + len(picked)
                changes.update({s: "scrapped" for s in free if s not in kept})
                changes.update(dict.fromkeys(back, "in_stock"))
            else:
                counted = max(0, at_main["on_hand"] + data.draw(st.integers(-2, 2)))
                lines.append({"sku": sku, "counted": counted})
            short = short or counted < at_main["reserved"]
            new_on_hand[sku] = self.on_hand[sku] - at_main["on_hand"] + counted
        resp = self.post(f"/stock/counts/{count_id}/scans", {"scans": scans, "lines": lines})
        assert resp.status_code == 200, resp.get_json()
        if cancel:
            resp = self.post(f"/stock/counts/{count_id}/cancel", {"staff": STAFF})
            assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled", resp.get_json()
            return
        resp = self.post(f"/stock/counts/{count_id}/post", {"staff": STAFF})
        if short:  # MAIN would hold fewer units than are reserved there
            assert resp.status_code == 409 and resp.get_json()["code"] == "below_reserved", resp.get_json()
            assert self.post(f"/stock/counts/{count_id}/cancel", {"staff": STAFF}).status_code == 200
            return
        assert resp.status_code == 200, resp.get_json()
        posted = {ln["sku"]: ln["posted_difference"] for ln in resp.get_json()["lines"]}
        assert {sku: d for sku, d in posted.items() if d} == {
            sku: new_on_hand[sku] - self.on_hand[sku] for sku in self.SKUS if new_on_hand[sku] != self.on_hand[sku]}
        grew = {sku for sku in self.SKUS if new_on_hand[sku] > self.on_hand[sku]}
        self.on_hand.update(new_on_hand)
        for serial, status in changes.items():
            self.serials[serial] = (self.serials[serial][0], status)
        self._refill(grew)


class PurchaseOrderRules:
    """A purchase order for one product, ordered, then received in one or two parts (serials for tracked
    products, some units damaged and not put on hand): the received units fill backorders first."""

    TRACKED: frozenset = frozenset()
    SKUS: tuple = ()

    @rule(data=st.data())
    def receive_purchase_order(self, data):
        sku = data.draw(st.sampled_from(self.SKUS))
        ordered = data.draw(st.integers(1, 5))
        resp = self.post("/purchase-orders", {"lines": [{"sku": sku, "quantity": ordered}]})
        assert resp.status_code == 201, resp.get_json()
        po = resp.get_json()
        resp = self.post(f"/purchase-orders/{po['id']}/order")
        assert resp.status_code == 200, resp.get_json()
        parts = data.draw(st.lists(st.tuples(st.integers(1, 4), st.integers(0, 1)), min_size=1, max_size=2))
        good_total = damaged_total = 0
        for good, damaged in parts:
            line = {"sku": sku, "damaged": damaged}
            if sku in self.TRACKED:
                line["serials"] = [f"{sku}-{next(self.serial_numbers)}" for _ in range(good)]
            else:
                line["quantity"] = good
            resp = self.post(f"/purchase-orders/{po['id']}/receive", {"lines": [line]})
            if good_total + damaged_total >= ordered:  # the first part completed it: received, closed to receipts
                assert resp.status_code == 409 and resp.get_json()["code"] == "illegal_transition", resp.get_json()
                break
            assert resp.status_code == 200, resp.get_json()
            good_total, damaged_total = good_total + good, damaged_total + damaged
            self.on_hand[sku] += good  # damaged units are recorded on the line, not put on hand
            for serial in line.get("serials", []):
                self.serials[serial] = (sku, "in_stock")
            self.fill_backorders(sku)
            po = resp.get_json()
            received = po["lines"][0]
            assert (received["received"], received["damaged"]) == (good_total, damaged_total), received
            assert received["short"] == max(0, ordered - good_total - damaged_total), received
            assert po["status"] == ("received" if good_total + damaged_total >= ordered else "partially_received")
