"""Refused credentials are a configuration error: raised at once, not retried forever."""

from __future__ import annotations

import time

import pytest
import s3fs

from runstream.compactor.exceptions import StoreAccessError
from runstream.compactor.store import Store
from runstream.core.settings import Settings

pytestmark = pytest.mark.integration


def test_wrong_credentials_raise_store_access_error_at_once(kafka_settings: Settings) -> None:
    fs = s3fs.S3FileSystem(
        key="runstream", secret="not-the-secret", endpoint_url=str(kafka_settings.s3_endpoint)
    )
    store = Store(fs, kafka_settings.store.removeprefix("s3://"))
    started = time.monotonic()
    with pytest.raises(StoreAccessError, match="AWS_ACCESS_KEY_ID"):
        store.write(f"{store.root}/probe.bin", b"x")
    assert time.monotonic() - started < 10
