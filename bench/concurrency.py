"""Concurrent sessions: each logs on, mounts, lists 20 times, downloads 5 x 10 MiB, unmounts and logs
out, all at once against one real server. Reports errors, listing latency and the server's memory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx2 as httpx
from tests.support import USERS

from bench.common import JSON, TOKEN, Row, pct, reset_peak, rss_kib, server

VM = "big-files"
LISTINGS = (
    "bigfiles:?action=listAll",
    "bigfiles:/large?action=listAll",
    "bigfiles:/small?action=listAll&pageSize=100&page={n}",
    "bigfiles:/big?action=listFiles",
)
DOWNLOAD = "bigfiles:/large/large_{n}.bin?action=download"
TEN_MIB = 10 * 1024 * 1024


class Tally:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.listing_s: list[float] = []
        self.downloaded = 0


async def _session(base: str, n: int, tally: Tally) -> None:
    user, (password, _) = "flrop", USERS["flrop"]
    async with httpx.AsyncClient(verify=False, timeout=120) as http:
        http.cookies.jar.set_policy(
            __import__("http.cookiejar").cookiejar.DefaultCookiePolicy(allowed_domains=[])
        )

        async def call(method: str, url: str, expect: int, **kw: object) -> httpx.Response:
            r = await http.request(method, url, **kw)  # type: ignore[arg-type]
            if r.status_code != expect:
                tally.errors.append(f"{method} {url.split('?')[0][-60:]}: {r.status_code} {r.text[:120]}")
                raise RuntimeError("failed")
            return r

        try:
            r = await call("POST", f"{base}/api/sessionMngr/?v=latest", 201, auth=(user, password))
            headers = {TOKEN: r.headers[TOKEN], **JSON}
            query = f"{base}/api/query?type=VmReplicaPoint&format=Entities&filter=VmDisplayName=={VM}"
            body = (await call("GET", query, 200, headers=headers)).json()
            point = body["Entities"]["VmReplicaPoints"]["VmReplicaPoints"][0]["Href"].split("?")[0]
            task = (await call("POST", point + "/mounts", 202, headers=headers)).json()
            while task["State"] != "Finished":
                await asyncio.sleep(0.01)
                task = (await call("GET", task["Href"], 200, headers=headers)).json()
            if not task["Result"]["Success"]:
                tally.errors.append(f"mount: {task['Result']['Message']}")
                return
            mount = next(lk["Href"] for lk in task["Links"] if lk["Rel"] == "Related")
            for i in range(20):
                url = f"{mount}/" + LISTINGS[i % len(LISTINGS)].format(n=(n * 20 + i) % 100 + 1)
                start = time.perf_counter()
                await call("GET", url, 200, headers=headers)
                tally.listing_s.append(time.perf_counter() - start)
            for i in range(5):
                offset = ((n * 5 + i) % 9) * TEN_MIB
                rng = {"Range": f"bytes={offset}-{offset + TEN_MIB - 1}"}
                url = f"{mount}/" + DOWNLOAD.format(n=(n + i) % 10)
                async with http.stream("GET", url, headers={**headers, **rng}) as resp:
                    got = 0
                    async for chunk in resp.aiter_bytes():
                        got += len(chunk)
                    if resp.status_code != 206 or got != TEN_MIB:
                        tally.errors.append(f"download: {resp.status_code}, {got} bytes")
                    tally.downloaded += got
            await call("DELETE", mount, 204, headers=headers)
            sessions = (await call("GET", f"{base}/api/logonSessions", 200, headers=headers)).json()
            await call("DELETE", sessions["LogonSessions"][0]["Href"], 204, headers=headers)
        except RuntimeError:
            pass
        except httpx.HTTPError as exc:
            tally.errors.append(f"{type(exc).__name__}: {exc}")


async def _all(base: str, sessions: int, tally: Tally) -> None:
    await asyncio.gather(*(_session(base, n, tally) for n in range(sessions)))


def concurrent_sessions(datastore: Path, data: Path, sessions: int = 50) -> list[Row]:
    tally = Tally()
    with server(data, datastore) as srv:
        before, _ = rss_kib(srv.process.pid)
        reset_peak(srv.process.pid)
        start = time.perf_counter()
        asyncio.run(_all(srv.base, sessions, tally))
        elapsed = time.perf_counter() - start
        after, peak = rss_kib(srv.process.pid)
    p50, p99 = pct(tally.listing_s, 50) * 1000, pct(tally.listing_s, 99) * 1000
    growth = (peak - before) / 1024
    return [
        Row(
            f"{sessions} concurrent sessions (logon, mount, 20 listings, 5 x 10 MiB, unmount, logout)",
            f"{len(tally.errors)} errors in {elapsed:.1f} s ({tally.downloaded / elapsed / 1e6:,.0f} MB/s)",
            target="0 errors",
            met=not tally.errors,
            note="; ".join(tally.errors[:3]),
        ),
        Row(
            "listing latency under that load: p50 / p99",
            f"{p50:.0f} / {p99:.0f} ms",
            target="p99 <= 1 s",
            met=p99 <= 1000,
        ),
        Row(
            "server RSS under that load: peak growth",
            f"{growth:.0f} MiB (peak {peak / 1024:.0f} MiB, after {after / 1024:.0f} MiB)",
            f"RSS before {before / 1024:.0f} MiB",
            target="bounded: <= 256 MiB growth",
            met=growth <= 256,
        ),
    ]
