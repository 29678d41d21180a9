"""MCP endpoint (in progress)."""

from __future__ import annotations

import contextlib


def routes() -> list:
    return []


@contextlib.asynccontextmanager
async def running():
    yield
