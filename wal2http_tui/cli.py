"""The ``wal2http-tui`` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wal2http_tui import __version__
from wal2http_tui.commands.exit_codes import EXIT_CONFIG_ERROR, EXIT_FAILURE, EXIT_OK
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import load_config
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.demo import throwaway

if TYPE_CHECKING:
    from wal2http_tui.engine.controls import EngineControls

DEFAULT_CONFIG = "wal2http.toml"


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
    path = _config_path(args)
    if not path.exists():
        print(
            f"wal2http-tui: no configuration file at {path}: pass --config FILE, or start from "
            "sample.toml; `wal2http-tui demo` shows the tool on a throwaway database",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    if args.headless:
        from wal2http_tui.commands.headless import configure_logging, run_headless

        config = load_config(path)
        configure_logging()
        return run_headless(config, accept_gap=args.accept_gap)
    from wal2http_tui.engine.child import EngineNotStarted
    from wal2http_tui.tui.app import run_app

    # attaching first: the running engine's file may use ${VAR}s this shell does not have
    engine = attachable_engine(path, read_only=args.read_only)
    if engine is None:
        load_config(path)  # a configuration error is said here, before any process starts
        try:
            engine = hosted_engine(path, read_only=args.read_only, accept_gap=args.accept_gap)
        except EngineNotStarted as exc:
            print(f"wal2http-tui: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    run_app(engine, path, read_only=args.read_only, mouse=not args.no_mouse)
    return _hosted_exit(engine)


def hosted_engine(path: Path, *, read_only: bool, accept_gap: bool) -> EngineControls:
    """The engine this UI runs: in a child process of its own (engine/child.py), so the UI's
    rendering takes nothing from it; in this process when its control socket cannot be served
    (said on stderr). ``EngineNotStarted`` (with its log's last lines) when it exited."""
    from wal2http_tui.engine.child import EngineNotStarted, EngineProcess
    from wal2http_tui.engine.facade import Engine
    from wal2http_tui.engine.remote import yield_cpu_to_the_engine

    try:
        child = EngineProcess(path, read_only=read_only, accept_gap=accept_gap)
    except (EngineNotStarted, OSError) as exc:
        if isinstance(exc, EngineNotStarted) and exc.exited:
            raise
        print(f"wal2http-tui: {exc}; running the engine in this process", file=sys.stderr)
        return Engine(load_config(path), accept_gap=accept_gap)
    yield_cpu_to_the_engine()
    return child


def _hosted_exit(engine: EngineControls) -> int:
    """The exit status of ``run`` with its UI: the engine child's, said when it failed."""
    from wal2http_tui.engine.child import EngineProcess

    if not isinstance(engine, EngineProcess):
        return EXIT_OK
    failure = engine.failure()
    if failure:
        print(f"wal2http-tui: {failure}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def attachable_engine(config_path: Path, *, read_only: bool) -> EngineControls | None:
    """The engine of ``config_path`` when one already answers on its control socket (the UI
    then attaches to it instead of starting a second engine that would wait as a standby)."""
    from wal2http_tui.engine.control_protocol import ControlError
    from wal2http_tui.engine.control_socket import socket_path_of_file
    from wal2http_tui.engine.remote import RemoteEngine, yield_cpu_to_the_engine

    try:
        remote = RemoteEngine(socket_path_of_file(config_path), read_only=read_only)
    except ControlError:
        return None  # nothing answers there: this UI runs the engine itself
    if not remote.runs(config_path):
        remote.stop()  # an engine of another file that uses the same socket
        return None
    yield_cpu_to_the_engine()
    return remote


def cmd_attach(args: argparse.Namespace) -> int:
    from wal2http_tui.engine.control_protocol import ControlError
    from wal2http_tui.engine.control_socket import socket_path_of_file
    from wal2http_tui.engine.remote import RemoteEngine, yield_cpu_to_the_engine
    from wal2http_tui.tui.app import run_app

    if args.socket and args.config:
        print("wal2http-tui: attach takes --config or --socket, not both", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    config_path = None if args.socket else _config_path(args)
    socket = socket_path_of_file(config_path) if config_path else Path(args.socket)
    try:
        remote = RemoteEngine(socket, read_only=args.read_only)
    except ControlError as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if config_path is not None and not remote.runs(config_path):
        remote.stop()
        print(
            f"wal2http-tui: the engine on {socket} runs {remote.config_path}, not "
            f"{config_path.absolute()}: give its socket with --socket, or set control_socket "
            "in each configuration to a path of its own",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    yield_cpu_to_the_engine()
    shown = remote.config_path or config_path or Path(DEFAULT_CONFIG)
    run_app(remote, shown, read_only=args.read_only, mouse=not args.no_mouse)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from wal2http_tui.engine.check import run_check

    config = _load(args)

    def emit(status: str, check: str, message: str) -> None:
        print(f"[{status:<4}] {check}: {message}", flush=True)

    outcome = run_check(config, emit)
    if outcome.refused:
        return EXIT_CONFIG_ERROR
    return EXIT_FAILURE if outcome.failed else EXIT_OK


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from wal2http_tui.commands.dead_letters import run_dead_letters

    return run_dead_letters(_load(args), args.action, args.id, every=args.all, sink=args.sink)


def cmd_backfill(args: argparse.Namespace) -> int:
    from wal2http_tui.commands.backfill import run_backfill

    if args.action != "start" and (args.sink or args.where):
        print("wal2http-tui: --sink and --where go with backfill start", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return run_backfill(_load(args), args.action, args.args, sinks=args.sink, where=args.where)


def cmd_demo(args: argparse.Namespace) -> int:
    from wal2http_tui.demo.run import run_demo

    if args.headless:
        return run_demo(headless=True, duration=args.duration, rate=args.rate)
    from wal2http_tui.tui.app import run_app

    def open_ui(engine: EngineControls, config_path: Path) -> None:
        run_app(engine, config_path, mouse=not args.no_mouse)

    return run_demo(headless=False, duration=None, rate=args.rate, open_ui=open_ui)


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

    def with_ui_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--read-only", action="store_true", help="no editing, no destructive actions"
        )
        sub.add_argument("--no-mouse", action="store_true", help="do not capture the mouse")

    with_config(parser)
    with_ui_options(parser)

    run = commands.add_parser("run", help="stream changes to the configured sinks (terminal UI)")
    with_config(run)
    with_ui_options(run)
    run.add_argument("--headless", action="store_true", help="no terminal UI; log to stderr")
    run.add_argument(
        "--accept-gap",
        action="store_true",
        help="start although changes were lost (dropped or moved slot, another cluster): "
        "the gap is recorded; resynchronise the receivers",
    )
    run.set_defaults(func=cmd_run)

    attach = commands.add_parser(
        "attach",
        help="open the terminal UI on the engine `run --headless` runs (quitting leaves it "
        "running)",
    )
    with_config(attach)
    with_ui_options(attach)
    attach.add_argument(
        "--socket", metavar="PATH", help="the engine's control socket (instead of --config)"
    )
    attach.set_defaults(func=cmd_attach)

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

    backfill = commands.add_parser(
        "backfill",
        help="send the rows tables already hold, while streaming: start, list, pause, resume, "
        "cancel",
    )
    with_config(backfill)
    backfill.add_argument("action", choices=["start", "list", "pause", "resume", "cancel"])
    backfill.add_argument(
        "args", nargs="*", metavar="TABLE|ID", help="start: the tables; pause/resume/cancel: an id"
    )
    backfill.add_argument(
        "--sink", action="append", default=[], metavar="NAME", help="start: only to this sink"
    )
    backfill.add_argument("--where", metavar="SQL", help="start: only the rows matching SQL")
    backfill.set_defaults(func=cmd_backfill)

    demo = commands.add_parser(
        "demo",
        help="the whole tool on a throwaway PostgreSQL with a workload and two local receivers",
    )
    demo.add_argument("--headless", action="store_true", help="no UI; print a summary at the end")
    demo.add_argument("--duration", type=float, default=None, help="headless: stop after N seconds")
    demo.add_argument("--rate", type=float, default=8.0, help="workload transactions per second")
    demo.add_argument("--no-mouse", action="store_true", help="do not capture the mouse")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # the terminal UI on the default (or given) configuration
        args.func, args.headless = cmd_run, False
    _exit_on_sigterm()
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except throwaway.PostgresNotFound as exc:
        print(f"wal2http-tui: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


if __name__ == "__main__":
    sys.exit(main())
