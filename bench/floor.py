"""The HTTP floor: Bastion's serving stack with an app that does no work at all.

``python -m bench.floor PORT WORKERS`` serves, through the same uvicorn options and the
same worker supervisor as ``bastion serve --workers N`` (``bastion.cli.workers``), an
ASGI app that reads the request body and answers every request with one stored search
answer of the size Bastion's has (10 points with ids and scores). Its time per request
is what HTTP costs here before Bastion does anything: the loopback round trip, the
client, uvicorn and its event loop. With one client the requests are in series, so no
server on this stack can answer a search faster than this floor plus the search itself:
``floor_qps / (floor_qps + bare_qps)`` caps its HTTP ÷ bare index ratio (``bench.search``).
``bench.servers.start_floor`` starts it.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
import uvicorn

from bastion.cli.workers import run_workers

ANSWER = orjson.dumps(
    {
        "result": {
            "points": [
                {"id": 90_000 + rank, "version": 0, "score": 0.9 - rank / 100} for rank in range(10)
            ]
        },
        "status": "ok",
        "time": 0.000321,
    }
)
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(ANSWER)).encode()),
]
# As ``bastion serve`` without trusted proxies (bastion.cli.serve.uvicorn_options).
OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "server_header": False,
    "proxy_headers": False,
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def make_app() -> Any:
    return app


def main(port: int, workers: int) -> int:
    if workers == 1:  # as bastion serve: one process, uvicorn's own socket
        uvicorn.run(app, host="127.0.0.1", port=port, **OPTIONS)
        return 0
    return run_workers(workers, "127.0.0.1", port, make_app, **OPTIONS)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
