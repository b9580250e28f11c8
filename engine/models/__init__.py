"""SQLAlchemy models. Plugins may read them and use the services to change them."""

from engine.db import db
from engine.models.auth import ApiKey, IdempotencyRecord, StaffSession, StaffUser
from engine.models.catalog import Product
from engine.models.counts import StockCount, StockCountLine, StockCountSerial
from engine.models.coupons import Coupon, CouponUse
from engine.models.customers import Customer
from engine.models.inbox import InboxRecord
from engine.models.locations import StockTransfer
from engine.models.orders import Order, OrderEvent, OrderFlag, OrderLine, Payment, Refund, Return, Shipment
from engine.models.purchasing import PurchaseOrder, PurchaseOrderLine, ReorderRule, StockAlert, Supplier
from engine.models.retry import RetryTask
from engine.models.serials import SerialEvent, SerialSequence
from engine.models.stock import Location, Reservation, SerialUnit, StockLevel, StockMovement

__all__ = [
    "db", "ApiKey", "IdempotencyRecord", "StaffSession", "StaffUser", "Product", "Coupon", "CouponUse", "Customer", "Order", "OrderEvent", "OrderFlag",
    "OrderLine", "Payment", "Refund", "Return", "Shipment", "InboxRecord", "Location", "PurchaseOrder",
    "Reservation", "SerialEvent", "SerialSequence",
    "SerialUnit", "StockLevel", "StockMovement", "StockTransfer", "StockCount", "StockCountLine", "StockCountSerial",
    "PurchaseOrderLine", "ReorderRule", "StockAlert", "Supplier", "RetryTask",
]
