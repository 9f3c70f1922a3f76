"""A webhook receiver for the notify worker: verifies each request and prints it.

    STOMPGATE_NOTIFY_WEBHOOK_SECRET=... python -m scripts.webhook_sink --port 9180

`make up` runs it and points the notify worker's webhook at it, so the demo shows a
notification arriving. It is also the reference for verifying the signature in your own
receiver: the raw body, `X-Stompgate-Timestamp` and `X-Stompgate-Signature`, checked with
`workers.notify.webhook.verify` (HMAC-SHA256 over `timestamp + "." + body`, compared in
constant time, at most 5 minutes old). A request that fails is answered 401.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson
from aiohttp import web

from workers.notify.webhook import SIGNATURE, TIMESTAMP, verify


def make_app(secret: bytes) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes: never re-serialize before verifying
        timestamp = request.headers.get(TIMESTAMP, "")
        if not verify(secret, timestamp, body, request.headers.get(SIGNATURE, ""), time.time()):
            print("webhook-sink: refused a request with a bad or old signature", flush=True)
            return web.json_response({"error": "bad signature"}, status=401)
        note = orjson.loads(body)
        unread = (note.get("data") or {}).get("unread")
        print(
            f"webhook-sink: push for {note['user']} in room {note['room']}: "
            f"{note['title']}: {note['body']!r} ({unread} unread)",
            flush=True,
        )
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", receive)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9180)
    args = parser.parse_args(argv)
    secret = os.environ.get("STOMPGATE_NOTIFY_WEBHOOK_SECRET", "")
    if not secret:
        print("webhook-sink: set STOMPGATE_NOTIFY_WEBHOOK_SECRET", file=sys.stderr)
        return 2
    web.run_app(make_app(secret.encode()), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
