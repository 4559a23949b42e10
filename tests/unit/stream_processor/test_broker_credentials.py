"""The processor connects with the same security settings as every other client."""

from __future__ import annotations

import faust
import pytest

from runstream.core.errors import ConfigError
from runstream.processor.app import broker_credentials


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials({}) is None
    assert broker_credentials({"security.protocol": "plaintext"}) is None


def test_sasl_properties_become_faust_sasl_credentials() -> None:
    credentials = broker_credentials(
        {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "alice",
            "sasl.password": "secret",
        }
    )
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("alice", "secret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is None


def test_sasl_ssl_carries_a_tls_context() -> None:
    credentials = broker_credentials(
        {"security.protocol": "SASL_SSL", "sasl.username": "a", "sasl.password": "b"}
    )
    assert credentials.ssl_context is not None


def test_an_unknown_protocol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"security\.protocol"):
        broker_credentials({"security.protocol": "KERBEROS"})
