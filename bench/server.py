"""The project's OpenAI-protocol test server in its own process, with a control channel.

`python -m bench.server --latency 0.3 --per-token 0.002 --no-n` prints the base URL as its
first stdout line, then reads commands from stdin, one per line:

- `requests`: one JSON line, the chat requests served so far (start/end are the server's
  `time.monotonic()`, comparable across processes on Linux, where it is CLOCK_MONOTONIC);
- `clear`: forget the recorded requests (one line `ok`).

It stops at the end of stdin, so it never outlives the benchmark that started it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from tests.openai_server import OpenAIServer


def _summary(record: dict[str, Any], bodies: bool) -> dict[str, Any]:
    """What a benchmark needs of one request: its timing and what identifies its call."""
    body = record.get("body") or {}
    out = {
        "start": record["start"],
        "end": record["end"],
        "status": record["status"],
        "seed": body.get("seed"),
        "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens"),
        "n": body.get("n", 1),
        # Every template quotes the question: it tells the runs of a batch apart.
        "user": _user_text(body),
    }
    if bodies:
        out["body"] = body
    return out


def _user_text(body: dict[str, Any]) -> str:
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--per-token", type=float, default=0.002)
    parser.add_argument("--no-n", action="store_true", help="ignore n, as llama.cpp does")
    args = parser.parse_args(argv)
    server = OpenAIServer(latency=args.latency, per_token=args.per_token,
                          support_n=not args.no_n, host="127.0.0.1", port=0)
    with server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["requests"]:
                bodies = command[1:] == ["bodies"]
                rows = [_summary(r, bodies) for r in server.chat_requests]
                print(json.dumps(rows), flush=True)
            elif command == ["clear"]:
                server.clear()
                print("ok", flush=True)
            else:
                print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)


if __name__ == "__main__":
    main()
