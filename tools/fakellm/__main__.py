"""CLI: ``python -m tools.fakellm --port N [--host H] [--latency-ms 500 --jitter-ms 100 ...]``.

Every field of ``Settings`` is a flag (``rate_429`` -> ``--rate-429``; lists are comma separated),
and ``--config '{"rate_429": 0.1}'`` sets several at once (explicit flags win over it).
Prints ``fakellm listening on http://HOST:PORT`` on stdout once ready; SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from typing import Any

from tools.fakellm.server import DEFAULT_REQUEST_LOG_SIZE, serve
from tools.fakellm.settings import Settings

_HELP = {
    "latency_ms": "mean latency of answered requests, ms (default 0)",
    "jitter_ms": "uniform +- jitter around the latency, ms (default 0)",
    "retry_after_s": "Retry-After header of 429 answers, seconds (default 1)",
    "hang_s": "how long hung requests sleep, seconds (default 3600)",
    "seed": "seed the fault/jitter RNG (draws consumed in arrival order)",
    "fail_first_n": "first N attempts of each distinct request body answer 500",
    "storm_s": "apply rate_429 only during the first S seconds (storm mode)",
    "api_key": "require 'Authorization: Bearer KEY'",
    "unknown_models": "comma separated models answered with 404 (default does-not-exist)",
    "models": "comma separated models listed by /v1/models (default fake-judge)",
    "script": "scripted model: 'length' applies word thresholds stated in the anchors",
    "content_filter_share": "share of prompts refused with a content-filter 400 (the same "
                            "prompts every time, chosen by the seed)",
    "max_context_tokens": "prompts over this many tokens get a context-window 400",
}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(prog="python -m tools.fakellm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--config", default=None, help="JSON object of settings")
    parser.add_argument("--request-log-size", type=int, default=DEFAULT_REQUEST_LOG_SIZE,
                        help="bodies kept for /_stats/requests (default 10000)")
    for f in dataclasses.fields(Settings):
        help_text = _HELP.get(f.name, "share of requests in [0, 1]" if f.name.startswith("rate_")
                              else None)
        # Strings only: Settings.updated does the type checking for CLI and /_control alike.
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            help=help_text)
    args = parser.parse_args(argv)

    changes: dict[str, Any] = {}
    if args.config:
        loaded = json.loads(args.config)
        if not isinstance(loaded, dict):
            parser.error("--config must be a JSON object")
        changes.update(loaded)
    for f in dataclasses.fields(Settings):
        value = getattr(args, f.name)
        if value is not None:
            changes[f.name] = value
    try:
        settings = Settings().updated(changes)
    except ValueError as exc:
        parser.error(str(exc))
    return args, settings


async def _main(args: argparse.Namespace, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(args.host, args.port, settings, args.request_log_size, stop)


def main(argv: list[str] | None = None) -> int:
    args, settings = parse_args(argv)
    asyncio.run(_main(args, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
