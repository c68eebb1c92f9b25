"""``slmsim serve-sim`` command line: flags, start-up checks (one line, exit 2), the serving loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from experiments.runtime.errors import CommandParser, report
from experiments.serve.app import ServerSettings, SimServer, start
from experiments.serve.faults import parse_faults
from protocols.config import ModelSpec
from protocols.interfaces import Backend


def sim_backends(cards: Iterable[str], seed: int, time_scale: float) -> dict[str, Backend]:
    """One simulated model per card name (faults are injected by the server, not the sim)."""
    from actors.backends.factory import base_backend

    return {
        card: base_backend(ModelSpec(name=card, backend="sim", card=card, time_scale=time_scale), seed)
        for card in cards
    }


def parse_aliases(values: list[str]) -> dict[str, str]:
    """``["gpt-3.5-turbo=Llama-3.1-8B-Instruct", ...]`` -> {alias: card}."""
    aliases: dict[str, str] = {}
    for value in values:
        name, sep, card = value.partition("=")
        if not sep or not name.strip() or not card.strip():
            raise ValueError(f"--alias {value[:80]!r} is not NAME=CARD")
        aliases[name.strip()] = card.strip()
    return aliases


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="slmsim serve-sim", description="serve simulated models over an OpenAI API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument(
        "--cards", default="Llama-3.1-8B-Instruct,Qwen2.5-7B-Instruct", help="comma-separated model cards to serve"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-s", type=float, default=0.0, help="fixed extra latency per request")
    parser.add_argument(
        "--faults", default="", help="e.g. rate_limit=0.1,server_error=0.05,timeout=0.02,malformed=0.01,drop=0.01"
    )
    parser.add_argument("--time-scale", type=float, default=0.0, help="real s slept per simulated s")
    parser.add_argument("--retry-after-s", type=float, default=1.0, help="Retry-After sent with a 429")
    parser.add_argument("--hang-s", type=float, default=600.0, help="how long an injected timeout hangs")
    parser.add_argument(
        "--read-timeout-s", type=float, default=10.0, help="408 for headers or a body not received by then"
    )
    parser.add_argument("--no-lookup", action="store_true", help="do not load datasets to find problems")
    parser.add_argument("--problems", action="append", default=[], type=Path, help="extra problems (JSONL), repeatable")
    parser.add_argument("--strict", action="store_true", help="422 for a prompt about no known problem")
    parser.add_argument("--alias", action="append", default=[], help="NAME=CARD: serve CARD as NAME, repeatable")
    parser.add_argument("--default-card", default=None, help="card serving any unknown model name")
    parser.add_argument("--think-tags", action="store_true", help="R1-style cards reason inline in <think>")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the port and the sample counter"
    )
    return parser


def settings_of(args: argparse.Namespace) -> ServerSettings:
    """Server settings from the flags (``ValueError`` naming a bad flag value)."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not in 0..65535")
    if not 1 <= args.workers <= 64:
        raise ValueError(f"--workers {args.workers} is not in 1..64")
    try:
        faults = parse_faults(args.faults)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"--faults {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    except ValueError as exc:
        raise ValueError(f"--faults: {exc}") from None
    return ServerSettings(
        latency_s=args.latency_s,
        faults=faults,
        fault_seed=args.seed,
        retry_after_s=args.retry_after_s,
        hang_s=args.hang_s,
        seed=args.seed,
        read_timeout_s=args.read_timeout_s,
        strict=args.strict,
        aliases=parse_aliases(args.alias),
        default_card=args.default_card,
        think_tags=args.think_tags,
    )


def build_server(args: argparse.Namespace) -> SimServer:
    """The server the flags describe (``ValueError`` naming a bad card, alias or problems file)."""
    from actors.backends.sim.cards import load_cards
    from experiments.serve.lookup import ProblemLookup, load_lookup

    settings = settings_of(args)
    cards = [c.strip() for c in args.cards.split(",") if c.strip()]
    known = load_cards()
    for card in cards:
        try:
            known.card(card)
        except (KeyError, ValueError):
            raise ValueError(f"--cards: unknown card {card[:80]!r}") from None
    names: tuple[str, ...] = () if args.no_lookup else ("math500", "gsm8k", "synthetic")
    lookup = load_lookup(names, args.problems) if names or args.problems else ProblemLookup(())
    return SimServer(sim_backends(cards, args.seed, args.time_scale), settings, lookup)


def freeze_start_up() -> None:
    """Take what start-up loaded out of the garbage collector's sight (``gc.freeze``).

    The datasets, the lookup index and the simulated models never become garbage, but every
    full collection walked them again: under load about one a few thousand requests, 0.07-0.1 s
    each (docs/serve_sim.md, "Throughput"). Done before ``--workers`` fork, it also keeps their
    pages shared (a collection no longer writes to their headers).
    """
    gc.collect()
    gc.freeze()


async def serve(server: SimServer, host: str, port: int) -> None:
    try:
        runner, bound = await start(server, host, port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    count = len(server.backends)
    print(
        f"serve-sim: {count} simulated model(s) at http://{host}:{bound}/v1 (source: sim); "
        f"{len(server.lookup)} problems indexed",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``slmsim serve-sim``."""
    args = build_parser().parse_args(argv)
    try:
        server = build_server(args)
    except (ValueError, ValidationError) as exc:
        line = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        report("serve-sim", line)
        return 2
    if args.workers > 1:  # before the freeze, so the facts are frozen and shared with the rest
        from experiments.serve.workers import warm_simulators

        warm_simulators(server)
    freeze_start_up()
    try:
        if args.workers > 1:
            from experiments.serve.workers import serve_workers

            serve_workers(server, args.host, args.port, args.workers)
        else:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(server, args.host, args.port))
    except ValueError as exc:
        report("serve-sim", str(exc))
        return 2
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
