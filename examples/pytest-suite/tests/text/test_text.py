import time

import pytest

from tests.util.text import is_palindrome, slugify, wrap


@pytest.mark.parametrize("src,slug", [
    ("Hello World", "hello-world"),
    ("  many   spaces  ", "many-spaces"),
    ("Crème brûlée", "creme-brulee"),
    ("already-a-slug", "already-a-slug"),
    ("C'est la vie!", "c-est-la-vie"),
])
def test_slugify(src, slug):
    assert slugify(src) == slug


def test_wrap_short():
    assert wrap("a b c", 10) == ["a b c"]


def test_wrap_long():
    assert wrap("the quick brown fox jumps", 10) == [
        "the quick", "brown fox", "jumps"]


def test_wrap_empty():
    assert wrap("", 5) == []


@pytest.mark.parametrize("s", ["racecar", "A man, a plan, a canal: Panama",
                               ""])
def test_palindromes(s):
    assert is_palindrome(s)


def test_not_palindrome():
    assert not is_palindrome("testfleet")


@pytest.mark.slow
def test_slow_report_generation():
    time.sleep(0.3)
    assert wrap("x " * 50, 20)
