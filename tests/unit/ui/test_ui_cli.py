"""``runstream ui`` binds to loopback by default and refuses another address without a token."""

from __future__ import annotations

import pytest

from runstream.ui.cli import check_bind, is_loopback
from runstream.ui.exceptions import UnsafeBindError


def test_loopback_needs_no_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    check_bind("127.0.0.1", None)


def test_other_addresses_need_a_token() -> None:
    assert not is_loopback("0.0.0.0")
    with pytest.raises(UnsafeBindError, match="--token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "s3cret")
