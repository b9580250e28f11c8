"""schemathesis over the whole OpenAPI document against two server processes (``hookshop serve
--workers 2``) on PostgreSQL: no answer is a 5xx, and every answer matches the document.

PostgreSQL only (several processes share one database; SQLite across processes is not the production
setup). The document, the plugins' settings and schemathesis' configuration are tests/test_schemathesis.py's
(that module runs the same checks in-process, with more examples, on SQLite and PostgreSQL); here each
request may reach either process, so what one process created, the other serves. Derandomized, with a few
examples per operation to keep the suite short.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from test_schemathesis import API_KEY, CONFIG, schema

from reliability.conftest import Processes, call, order_body, private_shop, stock_up


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, API key with every scope) of two server processes on a fresh schema with a little data."""
    folder = tmp_path_factory.mktemp("schemathesis-processes")
    with private_shop(folder) as shop:
        processes = Processes(folder)
        try:
            base = processes.serve(shop, shop.env(**{f"HOOKSHOP_{k}": v for k, v in CONFIG.items()}), workers=2)
            shop.create_key(API_KEY)  # the key schemathesis' auth sends
            headers = shop.headers()
            stock_up(base, shop, "MUG", 50, price=1290)
            status, body = call("POST", base + "/api/v1/products", {"sku": "PHONE", "name": "Phone", "price": 1290,
                                                                   "currency": "EUR", "track_serials": True}, headers)
            assert status == 201, body
            assert call("POST", base + "/api/v1/channels", {"name": "shop", "format": "generic"}, headers)[0] == 201
            for paid in (False, True):  # orders 1 and 2, so that small generated ids find one
                status, order = call("POST", base + "/api/v1/orders", order_body([("MUG", 1)]), headers)
                assert status == 201, order
                if paid:
                    assert call("POST", f"{base}/api/v1/orders/{order['id']}/pay", {}, headers)[0] == 200
            yield base, shop.key
        finally:
            processes.stop_all()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_promises_across_processes(case, served):
    base, _ = served
    case.call_and_validate(base_url=base)
