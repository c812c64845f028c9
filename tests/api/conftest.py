"""Fixtures shared by the tests/api modules (on top of tests/conftest.py's ``api``)."""

from __future__ import annotations

import pytest

from tests.api.flr import mount, point_href
from tests.support import Api


@pytest.fixture
def op(api: Api) -> str:
    """A session token of the restore operator ``flrop``."""
    return api.logon("flrop")


@pytest.fixture
def token(api: Api) -> str:
    """A session token of ``viewer`` (PortalUser: may read the inventory, list points and reports)."""
    return api.logon("viewer")


@pytest.fixture
def win(api: Api, op: str) -> str:
    """A mount of the newest point of the Windows VM on the qcow2 datastore."""
    return mount(api, op, point_href(api, op, "KVM", "Win File Server"))


@pytest.fixture
def lin(api: Api, op: str) -> str:
    """A mount of the newest point of the Linux VM on the qcow2 datastore."""
    return mount(api, op, point_href(api, op, "KVM", "lin-web01"))
