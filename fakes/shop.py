"""A fake shop back end for the order_saga scenario: a warehouse and a payment ledger.

The payment ledger is where a non-idempotent activity hurts: charging twice
takes the customer's money twice. :meth:`Payments.charge` deduplicates only
when the caller passes an idempotency key, as real payment APIs do.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PaymentDeclined(Exception):
    """The card was declined (raised for amounts over the limit)."""


class OutOfStock(Exception):
    """The warehouse cannot ship the item."""


@dataclass
class Payments:
    """Charges and refunds, keyed by a generated charge id."""

    limit: int = 1_000
    charges: list[dict] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    _by_key: dict[str, str] = field(default_factory=dict)

    def charge(self, order_id: str, amount: int, idempotency_key: str | None = None) -> str:
        if idempotency_key is not None and idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        if amount > self.limit:
            raise PaymentDeclined(f"amount {amount} is over the limit {self.limit}")
        charge_id = f"ch_{len(self.charges) + 1}"
        self.charges.append({"id": charge_id, "order": order_id, "amount": amount})
        if idempotency_key is not None:
            self._by_key[idempotency_key] = charge_id
        return charge_id

    def refund(self, charge_id: str) -> None:
        if charge_id not in self.refunds:
            self.refunds.append(charge_id)

    def balance(self) -> int:
        """Money taken and not refunded."""
        return sum(c["amount"] for c in self.charges if c["id"] not in self.refunds)


@dataclass
class Warehouse:
    """Stock levels and reservations; an item with no stock cannot ship."""

    stock: dict[str, int] = field(default_factory=lambda: {"book": 5, "lamp": 0})
    reserved: dict[str, str] = field(default_factory=dict)   # order -> item
    shipped: list[str] = field(default_factory=list)

    def reserve(self, order_id: str, item: str) -> None:
        self.reserved[order_id] = item

    def release(self, order_id: str) -> None:
        self.reserved.pop(order_id, None)

    def ship(self, order_id: str) -> str:
        item = self.reserved[order_id]
        if self.stock.get(item, 0) <= 0:
            raise OutOfStock(f"no {item} left to ship")
        if order_id not in self.shipped:
            self.stock[item] -= 1
            self.shipped.append(order_id)
        return f"parcel-{order_id}"


payments = Payments()
warehouse = Warehouse()


def reset() -> None:
    """A clean shop: no charges, full stock."""
    global payments, warehouse
    payments.__init__()
    warehouse.__init__()


def snapshot() -> dict:
    """The shop's state as plain data, for comparing runs (crash sweeps' ``effects=``)."""
    return {"charges": [dict(c) for c in payments.charges], "refunds": list(payments.refunds),
            "stock": dict(warehouse.stock), "shipped": list(warehouse.shipped)}
