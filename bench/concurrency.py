"""Concurrent sessions: each logs on, mounts, lists 20 times, downloads 5 x 10 MiB, unmounts and logs
out, all at once against one real server. Reports errors, listing latency and the server's memory.

Then a burst of concurrent folder ZIPs (the demo Windows VM's ``C:``: 10,020 files, 10,000 of them in
one folder): memory per stream (peak RSS growth over the streams), RSS a minute after the burst, and
listing latency while it runs."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx2 as httpx
from tests.support import USERS

from bench.common import JSON, TOKEN, Client, Row, pct, reset_peak, rss_kib, server

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
        self.elapsed = 0.0

    @property
    def mbps(self) -> float:
        """Bytes downloaded over the wall time of the run, in MB/s."""
        return self.downloaded / self.elapsed / 1e6 if self.elapsed else 0.0

    def listing_ms(self, p: float) -> float:
        """A percentile of the listing latencies in ms (NaN when no listing answered)."""
        return pct(self.listing_s, p) * 1000 if self.listing_s else float("nan")


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
        except (KeyError, IndexError, TypeError, ValueError, StopIteration) as exc:
            # An answer of an unexpected shape (through a balancer, say): an error of this session.
            tally.errors.append(f"{type(exc).__name__}: {exc}")


async def _all(base: str, sessions: int, tally: Tally) -> None:
    await asyncio.gather(*(_session(base, n, tally) for n in range(sessions)))


def run_sessions(base: str, sessions: int = 50) -> Tally:
    """``sessions`` sessions at once against ``base`` (``http(s)://host:port``, no ``/api``): a
    server, or a balancer in front of several (bench/cluster.py)."""
    tally = Tally()
    start = time.perf_counter()
    asyncio.run(_all(base, sessions, tally))
    tally.elapsed = time.perf_counter() - start
    return tally


SESSIONS = 200
"""Concurrent sessions of the group (the first round measured 50)."""
RSS_GROWTH_MIB = 512
"""The bound on the server's RSS growth under those sessions."""


def concurrent_sessions(datastore: Path, data: Path, sessions: int = SESSIONS) -> list[Row]:
    with server(data, datastore) as srv:
        before, _ = rss_kib(srv.process.pid)
        reset_peak(srv.process.pid)
        tally = run_sessions(srv.base, sessions)
        after, peak = rss_kib(srv.process.pid)
    p50, p99 = tally.listing_ms(50), tally.listing_ms(99)
    growth = (peak - before) / 1024
    return [
        Row(
            f"{sessions} concurrent sessions (logon, mount, 20 listings, 5 x 10 MiB, unmount, logout)",
            f"{len(tally.errors)} errors in {tally.elapsed:.1f} s ({tally.mbps:,.0f} MB/s)",
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
            target=f"bounded: <= {RSS_GROWTH_MIB} MiB growth",
            met=growth <= RSS_GROWTH_MIB,
        ),
    ]


ZIP_VM = "small"
ZIP_STREAMS = 64
SETTLE_S = 60


async def _zip_burst(base: str, headers: dict[str, str], mount: str, streams: int, tally: Tally) -> None:
    url = f"{mount}/C:?action=download"
    done = asyncio.Event()

    async def one(http: httpx.AsyncClient) -> None:
        async with http.stream("GET", url, headers=headers) as resp:
            got = 0
            async for chunk in resp.aiter_bytes():
                got += len(chunk)
            if resp.status_code != 200:
                tally.errors.append(f"zip: {resp.status_code}")
            tally.downloaded += got

    async def lister(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            start = time.perf_counter()
            r = await http.get(f"{mount}/C:/Documents?action=listAll", headers=headers)
            tally.listing_s.append(time.perf_counter() - start)
            if r.status_code != 200:
                tally.errors.append(f"listing: {r.status_code}")
            await asyncio.sleep(0.05)

    limits = httpx.Limits(max_connections=streams + 8)
    async with httpx.AsyncClient(verify=False, timeout=600, limits=limits) as http:
        listing = asyncio.create_task(lister(http))
        await asyncio.gather(*(one(http) for _ in range(streams)))
        done.set()
        await listing


def zip_burst(
    datastore: Path, data: Path, vm: str = ZIP_VM, streams: int = ZIP_STREAMS, settle_s: float = SETTLE_S
) -> list[Row]:
    """``streams`` concurrent folder ZIPs of ``vm``'s ``C:`` against one server, after one alone."""
    tally = Tally()
    with server(data, datastore) as srv:
        pid = srv.process.pid
        client = Client(srv.base)
        href, _ = client.mount(client.point(vm))
        one = client.get(f"{href}/C:?action=download")  # the mount's own caches are not per stream
        size = len(one.content)
        del one
        time.sleep(1)
        before, _ = rss_kib(pid)
        peak = before
        sampling = True

        def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_kib(pid)[0])
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.perf_counter()
        asyncio.run(_zip_burst(srv.base, client.headers, href, streams, tally))
        elapsed = time.perf_counter() - start
        sampling = False
        sampler.join()
        time.sleep(settle_s)
        after, _ = rss_kib(pid)
        client.unmount(href)
        client.close()
    per_stream = (peak - before) / 1024 / streams
    kept = (after - before) / 1024
    p50, p99 = pct(tally.listing_s, 50) * 1000, pct(tally.listing_s, 99) * 1000
    return [
        Row(
            f"{streams} concurrent folder ZIPs of C: ({size / 1e6:.1f} MB, 10,020 files each)",
            f"{len(tally.errors)} errors in {elapsed:.1f} s ({tally.downloaded / elapsed / 1e6:,.0f} MB/s)",
            target="0 errors",
            met=not tally.errors,
            note="; ".join(tally.errors[:3]),
        ),
        Row(
            "server memory per ZIP stream: peak RSS growth / streams",
            f"{per_stream:.1f} MiB (peak {peak / 1024:.0f} MiB)",
            f"RSS before {before / 1024:.0f} MiB",
            target="<= 4 MiB per stream",
            met=per_stream <= 4,
        ),
        Row(
            f"server RSS {settle_s:.0f} s after that burst, above its start",
            f"{kept:.0f} MiB (RSS {after / 1024:.0f} MiB)",
            f"RSS before {before / 1024:.0f} MiB",
            target="<= 64 MiB",
            met=kept <= 64,
        ),
        Row(
            "listing latency during that burst: p50 / p99",
            f"{p50:.0f} / {p99:.0f} ms ({len(tally.listing_s)} listings)",
            target="p99 <= 1 s",
            met=p99 <= 1000,
        ),
    ]


def concurrency(datastore: Path, data: Path) -> list[Row]:
    """The sessions mix, then the ZIP burst (each on a server of its own)."""
    (data / "sessions").mkdir()
    (data / "zips").mkdir()
    return concurrent_sessions(datastore, data / "sessions") + zip_burst(datastore, data / "zips")
