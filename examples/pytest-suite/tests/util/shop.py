"""A tiny shop for the example tests to exercise."""
from decimal import ROUND_HALF_UP, Decimal


class UnknownItem(KeyError):
    pass


class Catalog:
    def __init__(self, prices):
        self._prices = {k: Decimal(str(v)) for k, v in prices.items()}

    def price(self, item):
        try:
            return self._prices[item]
        except KeyError:
            raise UnknownItem(item) from None

    def __contains__(self, item):
        return item in self._prices

    def items(self):
        return sorted(self._prices)


class Cart:
    def __init__(self, catalog):
        self.catalog = catalog
        self.lines = {}

    def add(self, item, qty=1):
        if qty <= 0:
            raise ValueError("quantity must be positive")
        self.catalog.price(item)
        self.lines[item] = self.lines.get(item, 0) + qty

    def remove(self, item, qty=1):
        have = self.lines.get(item, 0)
        if qty > have:
            raise ValueError("cannot remove %d %s, cart has %d"
                             % (qty, item, have))
        if qty == have:
            del self.lines[item]
        else:
            self.lines[item] = have - qty

    def count(self):
        return sum(self.lines.values())

    def subtotal(self):
        return sum((self.catalog.price(i) * q for i, q in self.lines.items()),
                   Decimal("0"))

    def total(self, discount_pct=0):
        if not 0 <= discount_pct <= 100:
            raise ValueError("discount out of range")
        amount = self.subtotal() * (100 - Decimal(discount_pct)) / 100
        return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
