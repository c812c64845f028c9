"""The server-wide work budget: a fixed number of units, 503 with Retry-After beyond it."""

from __future__ import annotations

import threading

import pytest

from openflr.core.budget import Budget
from openflr.errors import UnavailableError


def test_budget_refuses_beyond_its_limit_and_frees_on_release() -> None:
    budget = Budget("downloads", 2, retry_after=3)
    budget.acquire()
    budget.acquire()
    with pytest.raises(UnavailableError) as refused:
        budget.acquire()
    assert refused.value.status == 503
    assert refused.value.headers() == {"Retry-After": "3"}
    assert "2 downloads are in progress" in refused.value.message
    budget.release()
    budget.acquire()
    assert budget.in_use == 2


def test_taken_releases_on_error() -> None:
    budget = Budget("mounts", 1)
    with pytest.raises(RuntimeError), budget.taken():
        raise RuntimeError("boom")
    assert budget.in_use == 0


def test_budget_is_exact_under_threads() -> None:
    budget = Budget("mounts", 5)
    got: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        try:
            budget.acquire()
            ok = True
        except UnavailableError:
            ok = False
        with lock:
            got.append(ok)

    threads = [threading.Thread(target=take) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got.count(True) == 5 and budget.in_use == 5
