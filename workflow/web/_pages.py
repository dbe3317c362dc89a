"""The web page: server-rendered HTML for people (see :func:`mount_pages`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["mount_pages"]


def mount_pages(app: FastAPI) -> None:
    """Add the page's routes and assets to ``app``."""
    _ = app


def _unused(*args: Any) -> None:  # pragma: no cover
    pass
