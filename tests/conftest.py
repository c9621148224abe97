"""Shared fixtures: a throwaway cluster per PostgreSQL major version, a fresh database per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from wal2http_tui.demo import throwaway
from wal2http_tui.replication import native

SERVERS = throwaway.available_servers()
# The whole suite runs on the oldest and the newest PostgreSQL found (15 and 18 here); a
# version between them (16) runs the tests of what PostgreSQL itself does, marked
# ``every_version`` (values, decoding, pre-flight, replica identity): three full runs would not
# fit in the time CI allows, and what varies between versions is what those tests hold.
FULL_MATRIX = {min(SERVERS), max(SERVERS)} if SERVERS else set()
_database_numbers = itertools.count(1)
# The hot path the engine runs in each version's tests (replication/native.py): the pure-Python
# reference on the oldest version, the compiled one on the others, so the whole suite runs once
# under each implementation in the time of one run (the equality tests in tests/unit hold the
# two to the same bytes on the same input). WAL2HTTP_IMPL set for the whole run wins.
COMPILED = native.NATIVE if native.compiled({}) is not None else native.PYTHON


def hot_path_for(major: int) -> str:
    if native.IMPL_VARIABLE in os.environ:
        return os.environ[native.IMPL_VARIABLE]
    return native.PYTHON if major == min(SERVERS) else COMPILED


SLOW_FOLDERS = ("integration", "reliability")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow``: a test that needs a PostgreSQL cluster or real processes (everything under
    integration/ and reliability/, and any test using the cluster); UI tests that take seconds
    are marked in their modules. ``pytest -m "not slow"`` runs the rest in under a minute.

    On a version outside ``FULL_MATRIX`` only the ``every_version`` tests are collected."""
    kept, dropped = [], []
    for item in items:
        folder = item.path.parent.name
        if folder in SLOW_FOLDERS or "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        major = callspec.params.get("pg_cluster") if callspec is not None else None
        if major in FULL_MATRIX or major is None or item.get_closest_marker("every_version"):
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@dataclass
class Database:
    """A fresh database on the throwaway cluster, dropped after the test."""

    cluster: throwaway.ThrowawayCluster
    name: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.name)

    @property
    def major(self) -> int:
        return self.cluster.server.major

    def execute(self, sql: str, params: object = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(
    scope="session",
    params=list(SERVERS) or [None],
    ids=lambda major: f"pg{major}" if major else "no-postgres",
)
def pg_cluster(request: pytest.FixtureRequest) -> Iterator[throwaway.ThrowawayCluster]:
    """One throwaway cluster per PostgreSQL major version found on this machine."""
    if request.param is None:
        pytest.fail(throwaway.NOT_FOUND_MESSAGE, pytrace=False)
    with throwaway.ThrowawayCluster(SERVERS[request.param]) as cluster:
        yield cluster


@pytest.fixture
def pg_newest(pg: Database) -> Database:
    """``pg``, for a test of what wal2http-tui does rather than what PostgreSQL does (a
    receiver's behaviour, say): it runs on the newest major version found only, which keeps
    the whole suite within its time."""
    if pg.major != max(SERVERS):
        pytest.skip(f"runs on PostgreSQL {max(SERVERS)} only: what it tests does not vary")
    return pg


@pytest.fixture
def pg(
    pg_cluster: throwaway.ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """A fresh database; its replication slots and the database itself are dropped afterwards.
    Engines started meanwhile (here or in child processes) run ``hot_path_for`` its version."""
    monkeypatch.setenv(native.IMPL_VARIABLE, hot_path_for(pg_cluster.server.major))
    name = f"t{next(_database_numbers)}"
    admin = pg_cluster.dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield Database(pg_cluster, name)
    finally:
        drop_database(admin, name)


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE database = %s AND active_pid IS NOT NULL",
            (name,),
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        for _ in range(50):
            try:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE database = %s",
                    (name,),
                )
                break
            except psycopg.errors.ObjectInUse:
                conn.execute("SELECT pg_sleep(0.1)")
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
