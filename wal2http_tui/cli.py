"""The ``wal2http-tui`` command line."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from wal2http_tui import __version__, devdb
from wal2http_tui.config import ConfigError, ReplicationConfig, load_config

DEFAULT_CONFIG = "wal2http.toml"
EXIT_CONFIG_ERROR = 2


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so clean-up (``finally``, ``atexit``) runs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("WAL2HTTP_CONFIG") or DEFAULT_CONFIG)


def _load(args: argparse.Namespace) -> ReplicationConfig:
    return load_config(_config_path(args))


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.headless:
        from wal2http_tui.headless import configure_logging, run_headless

        configure_logging()
        return run_headless(config)
    print("The terminal UI is not built yet: use `run --headless`.", file=sys.stderr)
    return 1


def cmd_check(args: argparse.Namespace) -> int:
    from wal2http_tui.check import FAIL, run_check

    config = _load(args)

    def emit(status: str, check: str, message: str) -> None:
        mark = {"ok": "ok  ", FAIL: "FAIL", "note": "note"}[status]
        print(f"[{mark}] {check}: {message}", flush=True)

    return 0 if run_check(config, emit) else 1


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from wal2http_tui import dead_letter_commands as commands
    from wal2http_tui.dead_letters import DeadLetterStore

    config = _load(args)
    store = DeadLetterStore(config.dead_letter_path)
    try:
        if args.action == "list":
            letters = store.list(sink=args.sink)
            for letter in letters:
                print(commands.describe(letter))
            print(f"{len(letters)} dead letter(s) in {config.dead_letter_path}")
            return 0
        if args.action in ("show", "drop") or (args.action == "replay" and not args.all):
            if args.id is None:
                print(f"dead-letters {args.action}: give an ID (see `list`)", file=sys.stderr)
                return EXIT_CONFIG_ERROR
            letter = store.get(args.id)
            if letter is None:
                print(f"no dead letter with id {args.id}", file=sys.stderr)
                return 1
            if args.action == "show":
                print(commands.show(letter))
                return 0
            if args.action == "drop":
                store.remove(letter.id)
                print(f"dropped {letter.id} ({letter.event_id})")
                return 0
            letters = [letter]
        else:
            letters = store.list(sink=args.sink, limit=1_000_000)
        replayer = commands.Replayer(config, store)
        try:
            failed = commands.replay_all(replayer, letters, print)
        finally:
            replayer.close()
        return 1 if failed else 0
    finally:
        store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    server = devdb.find_server()
    with devdb.ThrowawayCluster(server) as cluster:
        print(f"Throwaway PostgreSQL {server.version} with wal_level=logical is running.")
        print(f'  connect:  psql "{cluster.dsn()}"')
        print(f"  data:     {cluster.datadir} (deleted on exit)")
        print("Press Ctrl-C to stop it." if args.duration is None else "")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait(args.duration)
    print("Stopped and deleted.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wal2http-tui",
        description="Stream PostgreSQL logical replication (pgoutput) to HTTP and Hook0 webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--config",
            "-c",
            metavar="FILE",
            help=f"configuration file (default: $WAL2HTTP_CONFIG or ./{DEFAULT_CONFIG})",
        )

    run = commands.add_parser("run", help="stream changes to the configured sinks")
    with_config(run)
    run.add_argument("--headless", action="store_true", help="no terminal UI; log to stderr")
    run.set_defaults(func=cmd_run)

    check = commands.add_parser(
        "check", help="validate the configuration, PostgreSQL and every enabled sink"
    )
    with_config(check)
    check.set_defaults(func=cmd_check)

    letters = commands.add_parser("dead-letters", help="list, show, replay or drop dead letters")
    with_config(letters)
    letters.add_argument("action", choices=["list", "show", "replay", "drop"])
    letters.add_argument("id", nargs="?", type=int, help="dead letter id (see list)")
    letters.add_argument("--all", action="store_true", help="replay: every dead letter")
    letters.add_argument("--sink", help="list/replay --all: only this sink's")
    letters.set_defaults(func=cmd_dead_letters)

    demo = commands.add_parser(
        "demo", help="start a throwaway logical-replication PostgreSQL and show how to reach it"
    )
    demo.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _exit_on_sigterm()
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except devdb.PostgresNotFound as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


if __name__ == "__main__":
    sys.exit(main())
