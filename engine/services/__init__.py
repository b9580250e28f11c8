"""The use cases. Each public function is one transaction (``engine.db.transaction``).

Plugins may call: ``catalog.create_product``, ``stock.receive_stock``,
``placement.place_order``, the transition functions in ``orders``, ``payments.apply_payment``,
``payments.refund_order``, ``shipping.rates_for``, ``inbox.record_once``,
``orders.note`` (a timeline entry, inside the caller's transaction).
"""
