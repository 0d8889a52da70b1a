from decimal import Decimal

import pytest

from tests.util.shop import UnknownItem


@pytest.mark.parametrize("item,price", [
    ("apple", "0.50"), ("bread", "2.20"), ("cheese", "4.75"),
    ("milk", "1.10"), ("tea", "3.00"),
])
def test_price(catalog, item, price):
    assert catalog.price(item) == Decimal(price)


def test_unknown_item(catalog):
    with pytest.raises(UnknownItem):
        catalog.price("caviar")


def test_contains(catalog):
    assert "tea" in catalog and "coffee" not in catalog


def test_items_sorted(catalog):
    assert catalog.items() == sorted(catalog.items())


@pytest.mark.skip(reason="currency conversion is not implemented yet")
def test_prices_in_other_currencies(catalog):
    raise NotImplementedError
