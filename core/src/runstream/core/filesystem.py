"""The store's filesystem: s3fs for ``s3://``, the local filesystem for a path. One place."""

from __future__ import annotations

import fsspec
from fsspec import AbstractFileSystem

from runstream.core.settings import Settings


def open_store(settings: Settings) -> tuple[AbstractFileSystem, str]:
    """Return the fsspec filesystem of ``settings.store`` and the store's root path in it.

    For ``s3://bucket/prefix`` that is an s3fs filesystem (credentials the way botocore
    reads them, endpoint from ``RUNSTREAM_S3_ENDPOINT``) and ``bucket/prefix``; for a local
    path, the local filesystem and the absolute path (created if missing).
    """
    fs, root = fsspec.core.url_to_fs(settings.store, **settings.fs_options())
    if is_local(fs):
        fs.makedirs(root, exist_ok=True)
    return fs, str(root).rstrip("/")


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local filesystem (a store in a folder, not an object store)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols
