"""Drive a blocking chunk generator from the event loop, one worker-thread hop per chunk, reading the
next chunk while the current one is being sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")


def _next(chunks: Iterator[T]) -> T | None:
    try:
        return next(chunks)
    except StopIteration:
        return None


async def pump(chunks: Iterator[T]) -> AsyncGenerator[T, None]:
    """Yield ``chunks`` (each ``next`` runs in a worker thread), one chunk read ahead. When the
    consumer stops early the generator is closed once no thread is inside it."""
    pending: asyncio.Future[T | None] | None = None
    try:
        pending = asyncio.ensure_future(anyio.to_thread.run_sync(_next, chunks))
        while True:
            # Shielded: a cancelled consumer must not mark the read done while its thread is still
            # inside the generator (closing it then raises "generator already executing").
            data = await asyncio.shield(pending)
            pending = None
            if data is None:
                return
            pending = asyncio.ensure_future(anyio.to_thread.run_sync(_next, chunks))
            if data:
                yield data
    finally:
        if pending is not None and not pending.done():
            # A thread is inside the generator: close it when that read ends (we may be cancelled).
            pending.add_done_callback(lambda done: _close(chunks, done))
        else:
            _close(chunks, pending)


def _close(chunks: Iterator[T], done: asyncio.Future[T | None] | None) -> None:
    if done is not None and not done.cancelled():
        done.exception()  # retrieved: the consumer is gone, nobody else wants it
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
