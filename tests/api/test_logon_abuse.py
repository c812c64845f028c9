"""Logon abuse against a real `openflr serve`: delays, locks, unlock, spraying, session cap, tokens.

Each test speaks from its own loopback address (127.0.0.N) so that the per-address counters of one
test do not leak into another; the server sees those addresses as distinct clients.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from openflr.config import load_settings
from openflr.core.roles import Role
from openflr.core.users import UserStore
from openflr.store.db import Database
from tests.support import USERS, RunningServer, cli, local, plain_client, run_server, xml

TOKEN = "X-RestSvcSessionId"
LOGON = "/api/sessionMngr/?v=latest"
PASSWORD = "Pw!right1"
DELAY = 0.5
CONFIG = (
    "[security]\n"
    "logon_free_failures = 1\n"
    f"logon_max_delay = {DELAY}\n"
    "logon_base_delay = 0.25\n"
    "lock_after = 4\n"
    "lock_seconds = 60\n"
    "spray_lock_accounts = 5\n"
    "[sessions]\n"
    "max_per_user = 3\n"
)
OWN_USERS = ("delay-user", "locked-user", "same-user", "capped", "tokens", "burst-user")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("logon-abuse")
    db = Database(load_settings(env={"OPENFLR_DATA_DIR": str(data)}).database_url)
    users = UserStore(db)
    for name, (password, role) in USERS.items():
        users.add(name, password, Role(role))
    for name in OWN_USERS:
        users.add(name, PASSWORD, Role.RESTORE_OPERATOR)
    db.close()
    with run_server(data, https=False, config=CONFIG) as srv:
        yield srv


def client_from(address: str) -> httpx.Client:
    return plain_client(transport=httpx.HTTPTransport(local_address=address))


def timed_logon(
    c: httpx.Client, server: RunningServer, name: str, password: str, accept: str = "application/xml"
) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    r = c.post(server.base + LOGON, auth=(name, password), headers={"Accept": accept})
    return r, time.monotonic() - start


def users_list(server: RunningServer) -> dict[str, dict[str, object]]:
    out = cli(server.data_dir, "users", "list", "--json").stdout
    return {u["name"]: u for u in json.loads(out)}


def test_delays_grow_then_the_pair_is_locked(server: RunningServer) -> None:
    with client_from("127.0.0.11") as c:
        results = [timed_logon(c, server, "delay-user", "wrong") for _ in range(4)]
        assert [r.status_code for r, _ in results] == [401] * 4
        assert all(r.headers["WWW-Authenticate"] == 'Basic realm="RestSvc"' for r, _ in results)
        times = [t for _, t in results]
        # free failure, then 0.25 s, then the configured cap (0.5 s), then the cap again
        assert times[1] >= 0.25
        assert times[2] >= DELAY
        assert times[3] >= DELAY
        # After lock_after (4) failures of this account from this address: locked, right password or not.
        for password in ("wrong", PASSWORD):
            r, _ = timed_logon(c, server, "delay-user", password)
            assert r.status_code == 429, r.text
            assert 0 < int(r.headers["Retry-After"]) <= 60
            assert TOKEN not in r.headers and "WWW-Authenticate" not in r.headers
            err = xml(r)
            assert local(err.tag) == "Error"
            assert err.get("StatusCode") == "429" and err.get("Status") == "TooManyRequests"
            assert "too many failed logons" in err.get("Message", "")
            assert "openflr users unlock" in err.get("Message", "")
        r, _ = timed_logon(c, server, "delay-user", PASSWORD, accept="application/json")
        assert r.status_code == 429
        assert r.json()["StatusCode"] == 429 and "unlock" in r.json()["Message"]
    time.sleep(0.2)
    log = server.log()
    assert "logon locked: account 'delay-user' from 127.0.0.11 after 4 failed logons" in log
    assert PASSWORD not in log and "wrong" not in log


def test_lock_is_per_address_and_unlock_lifts_it_while_serving(server: RunningServer) -> None:
    with client_from("127.0.0.12") as attacker, client_from("127.0.0.13") as user:
        for _ in range(4):
            assert timed_logon(attacker, server, "locked-user", "guess")[0].status_code == 401
        assert timed_logon(attacker, server, "locked-user", PASSWORD)[0].status_code == 429
        # The real user elsewhere is only delayed, never locked out.
        r, _ = timed_logon(user, server, "locked-user", PASSWORD)
        assert r.status_code == 201, r.text
        listed = users_list(server)
        assert listed["locked-user"]["locked"] is True
        locks = listed["locked-user"]["locks"]
        assert isinstance(locks, list) and [lock["address"] for lock in locks] == ["127.0.0.12"]
        assert listed["flrop"]["locked"] is False
        table = cli(server.data_dir, "users", "list").stdout
        assert "locked from 127.0.0.12" in table
        out = cli(server.data_dir, "users", "unlock", "Locked-User").stdout
        assert "unlocked account 'locked-user' from 127.0.0.12" in out
        r, _ = timed_logon(attacker, server, "locked-user", PASSWORD)
        assert r.status_code == 201, r.text
        assert users_list(server)["locked-user"]["locked"] is False


def test_unknown_and_known_names_are_treated_alike(server: RunningServer) -> None:
    def run(address: str, name: str) -> list[tuple[int, str, str]]:
        with client_from(address) as c:
            seen = []
            for _ in range(6):
                r, _ = timed_logon(c, server, name, "not-it")
                message = xml(r).get("Message", "").replace(address, "ADDR")
                seen.append((r.status_code, message, r.headers.get("WWW-Authenticate", "")))
            return seen

    known = run("127.0.0.14", "same-user")
    unknown = run("127.0.0.15", "ghost-user")
    assert known == unknown
    assert [status for status, _, _ in known] == [401, 401, 401, 401, 429, 429]
    listed = cli(server.data_dir, "users", "locks", "--json").stdout
    locked = {(lock["account"], lock["address"]) for lock in json.loads(listed)}
    assert {("same-user", "127.0.0.14"), ("ghost-user", "127.0.0.15")} <= locked
    # Unlocking a name that is not a user works too (and says so).
    done = cli(server.data_dir, "users", "unlock", "ghost-user")
    assert "unlocked account 'ghost-user' from 127.0.0.15" in done.stdout
    assert "there is no user 'ghost-user'" in done.stderr


@pytest.mark.parametrize(("address", "right_at"), [("127.0.0.31", 0), ("127.0.0.32", 6), ("127.0.0.33", 11)])
def test_a_parallel_burst_checks_no_password_past_the_lock(
    server: RunningServer, address: str, right_at: int
) -> None:
    """12 logons at once for one account from one address, 11 wrong and 1 right at ``right_at``:
    no password is checked once the pair is locked, and the right one never lifts the lock."""
    passwords = ["wrong"] * 12
    passwords[right_at] = PASSWORD

    def attempt(password: str) -> int:
        with client_from(address) as c:
            return timed_logon(c, server, "burst-user", password)[0].status_code

    with ThreadPoolExecutor(len(passwords)) as pool:
        statuses = list(pool.map(attempt, passwords))
    right = statuses[right_at]
    wrong = statuses[:right_at] + statuses[right_at + 1 :]
    assert right in (201, 429) and set(wrong) <= {401, 429}, statuses
    checked_wrong = wrong.count(401)
    if right == 429:  # the lock came first: exactly lock_after (4) wrong passwords were checked
        assert checked_wrong == 4, statuses
    else:  # the right one reset the pair: at most 3 failures before it, then 4 more until the lock
        assert 4 <= checked_wrong <= 7, statuses
    locks = users_list(server)["burst-user"]["locks"]
    assert isinstance(locks, list) and address in [lock["address"] for lock in locks], statuses


def test_password_spraying_locks_the_address(server: RunningServer) -> None:
    with client_from("127.0.0.16") as sprayer, client_from("127.0.0.17") as other:
        for i in range(5):
            assert timed_logon(sprayer, server, f"spray{i}", "Winter2024!")[0].status_code == 401
        r, _ = timed_logon(sprayer, server, "viewer", "V1ewer!pass")
        assert r.status_code == 429
        assert "different accounts" in xml(r).get("Message", "")
        assert timed_logon(other, server, "viewer", "V1ewer!pass")[0].status_code == 201
        assert (
            "address 127.0.0.16 is locked for every account" in cli(server.data_dir, "users", "list").stdout
        )
        out = cli(server.data_dir, "users", "unlock", "--address", "127.0.0.16").stdout
        assert "unlocked address 127.0.0.16 (every account)" in out
        assert timed_logon(sprayer, server, "viewer", "V1ewer!pass")[0].status_code == 201
    time.sleep(0.2)
    assert "logon locked: address 127.0.0.16 after failed logons for 5 different accounts" in server.log()


def test_session_cap_per_user(server: RunningServer) -> None:
    with client_from("127.0.0.18") as c:
        tokens = []
        for _ in range(3):
            r, _ = timed_logon(c, server, "capped", PASSWORD)
            assert r.status_code == 201, r.text
            tokens.append(r.headers[TOKEN])
        r, _ = timed_logon(c, server, "capped", PASSWORD)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0
        message = xml(r).get("Message", "")
        assert "already has 3 logon sessions" in message and "Log out of one" in message
        # The cap is per user: others log on, and a logout frees a slot.
        assert timed_logon(c, server, "tokens", PASSWORD)[0].status_code == 201
        listed = c.get(
            server.base + "/api/logonSessions", headers={TOKEN: tokens[0], "Accept": "application/json"}
        ).json()
        href = listed["LogonSessions"][0]["Href"]
        assert c.delete(href, headers={TOKEN: tokens[0]}).status_code == 204
        assert timed_logon(c, server, "capped", PASSWORD)[0].status_code == 201
        # A right password over the cap is not a failed logon: no lock builds up.
        for _ in range(5):
            assert timed_logon(c, server, "capped", PASSWORD)[0].status_code == 429
    assert users_list(server)["capped"]["locked"] is False


def test_tokens_are_128_random_bits(server: RunningServer) -> None:
    seen = set()
    with client_from("127.0.0.19") as c:
        for _ in range(12):
            r, _ = timed_logon(c, server, "tokens", PASSWORD)
            assert r.status_code == 201, r.text
            token = r.headers[TOKEN]
            raw = base64.b64decode(token, validate=True)
            assert len(raw) == 16 and len(token) == 24
            seen.add(raw)
            href = r.headers["Location"]
            assert c.delete(href, headers={TOKEN: token}).status_code == 204
        # A token that differs from a live one in its last bit only is just as unknown.
        r, _ = timed_logon(c, server, "tokens", PASSWORD)
        live = base64.b64decode(r.headers[TOKEN])
        near = base64.b64encode(live[:-1] + bytes([live[-1] ^ 1])).decode()
        assert c.get(server.base + "/api/logonSessions", headers={TOKEN: near}).status_code == 401
        assert c.get(server.base + "/api/logonSessions", headers={TOKEN: r.headers[TOKEN]}).status_code == 200
    assert len(seen) == 12


def test_lock_state_survives_in_the_database(server: RunningServer) -> None:
    # `openflr users locks` is a separate process reading what the server wrote.
    with client_from("127.0.0.20") as c:
        for _ in range(4):
            timed_logon(c, server, "no-such-admin", "x")
    out = cli(server.data_dir, "users", "locks").stdout
    assert "account 'no-such-admin' from 127.0.0.20: 4 failed logons, locked until" in out


def test_forwarded_for_headers_do_not_choose_the_counted_address(server: RunningServer) -> None:
    """Without configured trusted proxies the TCP peer is the client: a local process cannot pin
    failures (or locks) on someone else's address with X-Forwarded-For."""
    # From 127.0.0.1: the one peer uvicorn would otherwise believe (its default forwarded_allow_ips).
    with client_from("127.0.0.1") as c:
        for _ in range(2):
            r = c.post(
                server.base + LOGON,
                auth=("nobody-xff", "wrong"),
                headers={"X-Forwarded-For": "10.9.9.9", "X-Real-IP": "10.9.9.9"},
            )
            assert r.status_code == 401
    log = server.log()
    assert "127.0.0.1 POST /api/sessionMngr" in log
    assert "10.9.9.9" not in log
