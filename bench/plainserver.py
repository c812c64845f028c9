"""The download baseline: openflr's own HTTP stack streaming a plain local file.

Same uvicorn configuration (``openflr.server.build_config``: protocol, event loop, TLS settings),
same malloc tuning and the same streaming path (``restore.pump`` with 1 MiB reads in worker
threads) as ``openflr serve``; only the disk engine is replaced by ``os.pread`` of an ordinary file.
The ratio of a download to this stream is what openflr's engine and bookkeeping cost.

python -m bench.plainserver FILE PORT [--http]   (the data directory comes from OPENFLR_DATA_DIR)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from openflr import malloc
from openflr.config import load_settings
from openflr.restore.items import CHUNK
from openflr.restore.pump import pump
from openflr.server import build_config


def file_chunks(path: str) -> Iterator[bytes]:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        offset = 0
        while offset < size:
            data = os.pread(fd, min(CHUNK, size - offset), offset)
            if not data:
                return
            offset += len(data)
            yield data
    finally:
        os.close(fd)


def app_for(path: str) -> Starlette:
    size = os.stat(path).st_size

    async def plain(_request: Request) -> Response:
        return StreamingResponse(
            pump(file_chunks(path)),
            headers={"Content-Length": str(size)},
            media_type="application/octet-stream",
        )

    async def ready(_request: Request) -> Response:
        return Response("ok")

    return Starlette(routes=[Route("/plain", plain), Route("/api/", ready)])


def main() -> None:
    path, port = sys.argv[1], int(sys.argv[2])
    settings = load_settings()
    settings.server.host, settings.server.port = "127.0.0.1", port
    settings.server.http = "--http" in sys.argv[3:]
    malloc.tune()
    uvicorn.Server(build_config(settings, app_for(path))).run()


if __name__ == "__main__":
    main()
