"""Keyed gates: bodies with one key run one after the other; other keys are not held up."""

from __future__ import annotations

import asyncio

from openflr.core.gates import KeyedGates


def test_one_key_runs_one_at_a_time_and_is_forgotten_after() -> None:
    async def run() -> tuple[list[str], int]:
        gates = KeyedGates()
        events: list[str] = []

        async def body(key: str, name: str) -> None:
            async with gates.one_at_a_time(key):
                events.append(f"{name} in")
                await asyncio.sleep(0.01)
                events.append(f"{name} out")

        await asyncio.gather(body("a", "a1"), body("a", "a2"), body("b", "b1"))
        return events, len(gates)

    events, left = asyncio.run(run())
    assert events.index("a1 out") < events.index("a2 in")  # same key: never overlapping
    assert events.index("b1 in") < events.index("a1 out")  # another key: not held up
    assert left == 0


def test_a_cancelled_waiter_leaves_no_gate_behind() -> None:
    async def run() -> int:
        gates = KeyedGates()
        held = asyncio.Event()

        async def holder() -> None:
            async with gates.one_at_a_time("k"):
                held.set()
                await asyncio.sleep(0.05)

        task = asyncio.create_task(holder())
        await held.wait()
        waiter = asyncio.create_task(gates.one_at_a_time("k").__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        await task
        return len(gates)

    assert asyncio.run(run()) == 0
