"""The commands operators run: run --headless, check, dead-letters; exit codes and output."""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys

from tests.support.engine import http_sink, slot_confirmed_lsn, wait_until
from tests.support.process import cli
from wal2http_tui.demo.receiver import Fault, WebhookReceiver


def write_config(tmp_path, pg, sinks: str, **top: object) -> str:
    path = tmp_path / "wal2http.toml"
    extra = "".join(f"{key} = {value}\n" for key, value in top.items())
    path.write_text(
        f'connection_string = "{pg.dsn}"\nslot_name = "cli"\npublication_name = "cli_pub"\n'
        f"feedback_interval_secs = 1\n{extra}{sinks}"
    )
    return str(path)


def test_run_headless_streams_logs_and_stops_cleanly_on_sigterm(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        config = write_config(tmp_path, pg, http_sink(receiver.url))
        process = subprocess.Popen(
            [sys.executable, "-m", "wal2http_tui", "run", "--headless", "--config", config],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: slot_confirmed_lsn(pg, "cli"), what="slot created")
            pg.execute("INSERT INTO t SELECT generate_series(1, 10)")
            receiver.wait_for_events(10)
            commit = int(pg.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0])
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    assert "streaming slot cli" in stderr
    assert "received SIGTERM: stopping" in stderr
    assert "stopped; confirmed" in stderr
    assert slot_confirmed_lsn(pg, "cli") >= commit - 1024
    assert [e["new"]["id"] for e in receiver.events] == list(range(1, 11))


def test_check_reports_each_check_and_fails_on_an_unreachable_sink(pg, tmp_path):
    with WebhookReceiver() as receiver:
        good = write_config(tmp_path, pg, http_sink(receiver.url))
        result = cli("check", "--config", good)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("[ok  ] configuration:")
        for check in ("connection", "wal_level", "role", "publication", "slot", "sink http http"):
            assert any(line.startswith(f"[ok  ] {check}") for line in lines), check
        assert "created at start" in result.stdout  # check creates nothing
        assert not pg.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'cli'")
    bad = write_config(tmp_path, pg, http_sink("http://127.0.0.1:9/hook"))
    result = cli("check", "--config", bad)
    assert result.returncode == 1
    assert "[FAIL] sink http http: connection refused by http://127.0.0.1:9/hook" in result.stdout


def test_config_errors_exit_2_with_file_line_key_and_leave_the_file_alone(tmp_path):
    path = tmp_path / "wal2http.toml"
    text = 'connection_string = "host=x"\n[event_sinks.http]\nurl = "ftp://nope"\n'
    path.write_text(text)
    result = cli("run", "--headless", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"wal2http-tui: {path}:3: event_sinks.http.url: expected an http:// or https:// URL, "
        'got "ftp://nope"'
    )
    assert path.read_text() == text


def test_dead_letters_list_show_replay_drop(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
    with WebhookReceiver() as receiver:
        receiver.fail_always(Fault(status=400))
        config = write_config(
            tmp_path, pg, http_sink(receiver.url, on_failure="dead_letter", retries=0)
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "wal2http_tui", "run", "--headless", "--config", config],
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: slot_confirmed_lsn(pg, "cli"), what="slot created")
            pg.execute("INSERT INTO t VALUES (1, 'first'), (2, 'second')")
            wait_until(
                lambda: "2 dead letter(s)" in cli("dead-letters", "list", "-c", config).stdout,
                what="two dead letters",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        listing = cli("dead-letters", "list", "-c", config).stdout
        assert "public.t.insert" in listing and "2 dead letter(s)" in listing
        first_id = listing.split()[0]
        shown = cli("dead-letters", "show", first_id, "-c", config).stdout
        assert '"note": "first"' in shown and "400" in shown
        assert cli("dead-letters", "drop", first_id, "-c", config).returncode == 0
        receiver.fail_always(None)
        replayed = cli("dead-letters", "replay", "--all", "-c", config)
        assert replayed.returncode == 0, replayed.stdout
        events = receiver.wait_for_events(1)
        assert [e["new"]["note"] for e in events] == ["second"]
        assert "0 dead letter(s)" in cli("dead-letters", "list", "-c", config).stdout
    assert oct(os.stat(tmp_path / "wal2http-dead-letters.sqlite").st_mode & 0o777) == "0o600"


def test_unknown_dead_letter_id(pg, tmp_path):
    config = write_config(tmp_path, pg, http_sink("http://127.0.0.1:9/x"))
    result = cli("dead-letters", "show", "999", "-c", config)
    assert result.returncode == 1
    assert "no dead letter with id 999" in result.stderr


def test_demo_headless_runs_the_whole_tool_and_cleans_up():
    before = set(glob.glob("/tmp/wal2http-demo-*")) | set(glob.glob("/tmp/wal2http-pg-*"))
    result = cli("demo", "--headless", "--duration", "4", "--rate", "10", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    received = int(re.search(r"(\d+) received \((\d+) changes\)", out).group(2))
    warehouse = re.search(r"sink warehouse: (\d+) delivered", out)
    accepted = re.search(r"receiver warehouse accepted (\d+) events", out)
    assert received > 10
    assert int(warehouse.group(1)) == int(accepted.group(1)) == received
    flaky = re.search(r"sink flaky-crm: (\d+) delivered, (\d+) failed attempts, (\d+) dead", out)
    assert int(flaky.group(1)) + int(flaky.group(3)) == received
    after = set(glob.glob("/tmp/wal2http-demo-*")) | set(glob.glob("/tmp/wal2http-pg-*"))
    assert after <= before
