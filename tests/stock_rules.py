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
        resp = self.post("/stock/adjustments", {"sku": sku, "quantity": quantity, "reason": reason, "staff": STAFF})
        if self.on_hand[sku] + quantity < self.reserved(sku):
            assert resp.status_code == 409 and resp.get_json()["code"] == "below_reserved", resp.get_json()
            return
        assert resp.status_code == 201, resp.get_json()
        self.on_hand[sku] += quantity
        if quantity > 0:
            self._refill({sku})

    def _adjust_serial(self, sku: str, data):
        in_stock, picked = self._serials_of(sku, "in_stock"), self._serials_of(sku, "picked")
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
            resp = self.post("/stock/adjustments", {"sku": sku, "serials": [serial], "staff": STAFF,
                                                    "reason": data.draw(st.sampled_from(["damage", "loss"]))})
            if self.on_hand[sku] - 1 < self.reserved(sku):
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
        lines, scans, new_on_hand, changes = [], [], {}, {}
        for sku in self.SKUS:
            if sku in self.TRACKED:
                kept = data.draw(st.lists(st.sampled_from(self._serials_of(sku, "in_stock")), unique=True)) \
                    if self._serials_of(sku, "in_stock") else []
                back = data.draw(st.lists(st.sampled_from(self._serials_of(sku, "scrapped")), unique=True,
                                          max_size=2)) if self._serials_of(sku, "scrapped") else []
                picked = self._serials_of(sku, "picked")
                scans += kept + back + picked
                new_on_hand[sku] = len(kept) + len(back) + len(picked)
                changes.update({s: "scrapped" for s in self._serials_of(sku, "in_stock") if s not in kept})
                changes.update(dict.fromkeys(back, "in_stock"))
            else:
                new_on_hand[sku] = max(0, self.on_hand[sku] + data.draw(st.integers(-2, 2)))
                lines.append({"sku": sku, "counted": new_on_hand[sku]})
        resp = self.post(f"/stock/counts/{count_id}/scans", {"scans": scans, "lines": lines})
        assert resp.status_code == 200, resp.get_json()
        if cancel:
            resp = self.post(f"/stock/counts/{count_id}/cancel", {"staff": STAFF})
            assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled", resp.get_json()
            return
        resp = self.post(f"/stock/counts/{count_id}/post", {"staff": STAFF})
        if any(new_on_hand[sku] < self.reserved(sku) for sku in self.SKUS):
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
