"""A 401 asks for Basic credentials only where a person or an EM client can answer it: never to the
web page's own calls, where a browser would stop the call to show its password prompt (and the page
could not show its log-on form or say that the session ended)."""

from __future__ import annotations

import pytest

from tests.support import Api

CHALLENGE = 'Basic realm="RestSvc"'
FETCH = {"Accept": "application/json", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}


@pytest.mark.parametrize("path", ["/api/openflr/me", "/api/replicas?format=Entity", "/api/tasks"])
def test_the_pages_fetches_get_no_challenge(api: Api, path: str) -> None:
    r = api.get(path, headers=FETCH)
    assert r.status_code == 401, r.text
    assert "WWW-Authenticate" not in r.headers
    assert r.json()["Message"]


def test_the_pages_own_api_never_challenges(api: Api) -> None:
    r = api.get("/api/openflr/me", headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert "WWW-Authenticate" not in r.headers


@pytest.mark.parametrize("mode", [None, "navigate"])
def test_em_clients_and_address_bars_are_still_challenged(api: Api, mode: str | None) -> None:
    headers = {"Sec-Fetch-Mode": mode} if mode else {}
    r = api.get("/api/replicas", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == CHALLENGE
