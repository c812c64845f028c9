"""The thread pump: chunks arrive in order, and a consumer cancelled mid-read closes the generator
only once its worker thread has left it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from openflr.restore.pump import pump


def test_chunks_arrive_in_order_and_empty_ones_are_dropped() -> None:
    async def collect() -> list[bytes]:
        return [data async for data in pump(iter([b"a", b"", b"bc", b"d"]))]

    assert asyncio.run(collect()) == [b"a", b"bc", b"d"]


def test_cancelled_consumer_closes_the_generator_after_its_thread_leaves() -> None:
    inside = threading.Event()
    release = threading.Event()
    closed = threading.Event()
    errors: list[BaseException] = []

    def slow_chunks() -> Iterator[bytes]:
        try:
            yield b"first"
            inside.set()
            release.wait(10)  # a slow disk read, still running when the client goes away
            yield b"second"
        except GeneratorExit:
            closed.set()
            raise

    async def consume() -> None:
        async for _ in pump(slow_chunks()):
            await asyncio.sleep(3600)  # the response is being sent when the client disconnects

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))  # type: ignore[arg-type]
        task = asyncio.create_task(consume())
        await asyncio.to_thread(inside.wait, 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not closed.is_set()  # a thread is still inside the generator: not closed under it
        release.set()
        await asyncio.to_thread(closed.wait, 10)

    asyncio.run(main())
    assert closed.is_set()
    assert errors == []


def test_cancel_while_awaiting_a_read_does_not_close_the_generator_under_the_thread() -> None:
    inside = threading.Event()
    release = threading.Event()
    outcome: list[str] = []

    def slow_chunks() -> Iterator[bytes]:
        inside.set()
        release.wait(10)
        try:
            yield b"late"
        finally:
            outcome.append("closed")

    async def main() -> None:
        async def consume() -> None:
            async for _ in pump(slow_chunks()):
                pass

        task = asyncio.create_task(consume())
        await asyncio.to_thread(inside.wait, 10)
        task.cancel()  # the consumer is awaiting the read that the thread is doing
        try:
            await task
        except asyncio.CancelledError:
            outcome.append("cancelled")
        except ValueError as exc:  # "generator already executing": closed under the thread
            outcome.append(f"error: {exc}")
        release.set()
        for _ in range(200):
            if "closed" in outcome:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert outcome == ["cancelled", "closed"]
