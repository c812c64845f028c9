"""One asyncio lock per key (an account and an address, say), kept only while it is held or awaited."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    """Tasks holding or waiting for ``lock``; the gate is forgotten when none is left."""


class KeyedGates:
    """``async with gates.one_at_a_time(key)``: bodies with the same key run one after the other."""

    def __init__(self) -> None:
        self._gates: dict[Hashable, _Gate] = {}

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, key: Hashable) -> AsyncIterator[None]:
        gate = self._gates.setdefault(key, _Gate())
        gate.users += 1
        try:
            async with gate.lock:
                yield
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._gates[key]

    def __len__(self) -> int:
        return len(self._gates)
