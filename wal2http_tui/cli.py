"""The ``wal2http-tui`` command line."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence

from wal2http_tui import __version__, devdb


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so clean-up (``finally``, ``atexit``) runs."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


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

    demo = commands.add_parser(
        "demo",
        help="start a throwaway PostgreSQL with logical replication and show how to reach it",
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
    except devdb.PostgresNotFound as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
