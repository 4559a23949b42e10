"""``runstream ui``: serve the web UI over the query engine."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket

import click

from runstream.core.settings import UI_TOKEN_VARIABLE, Settings
from runstream.ui.exceptions import UnsafeBindError

logger = logging.getLogger(__name__)

TOKEN_ENV = UI_TOKEN_VARIABLE


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) resolves only to loopback addresses."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback ``host`` without a token.

    Raises:
        UnsafeBindError: ``host`` is not loopback and ``token`` is empty.
    """
    if not token and not is_loopback(host):
        raise UnsafeBindError(
            f"host {host!r} is reachable from other machines: set a token with --token or "
            f"{TOKEN_ENV} (or bind to 127.0.0.1)"
        )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5055, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    default=None,
    help=f"Require this token on every request (default: {TOKEN_ENV}); needed off loopback.",
)
@click.option("--tracking-uri", default=None, help="Overrides RUNSTREAM_TRACKING_URI.")
@click.option("--store", default=None, help="Overrides RUNSTREAM_STORE.")
def ui(
    host: str, port: int, token: str | None, tracking_uri: str | None, store: str | None
) -> None:
    """Serve the web UI: runs table, run pages, metric charts, compare view."""
    import uvicorn

    from runstream.ui.app import create_app
    from runstream.ui.backend import Backend

    token = token or os.environ.get(TOKEN_ENV) or None
    check_bind(host, token)
    settings = Settings.resolve(tracking_uri, store)
    hosts = ["127.0.0.1", "localhost", "::1"] if is_loopback(host) else ["*"]
    app = create_app(Backend.from_settings(settings), token=token, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"Runstream UI on http://{shown}:{port}/ ({settings.tracking_uri}, {settings.store})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
