"""Fixtures shared by the example tests."""
import pytest

from tests.util.shop import Cart, Catalog


@pytest.fixture(scope="session")
def catalog():
    return Catalog({"apple": 0.50, "bread": 2.20, "cheese": 4.75,
                    "milk": 1.10, "tea": 3.00})


@pytest.fixture
def cart(catalog):
    return Cart(catalog)
