"""End-to-end: `clawback run` receives the feed simulator's events and stores them once each."""

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from clawback_env import BINARY, SAMPLE_FEED, Clawback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "sim" / "feed"))
import harness  # noqa: E402  (the feed simulator's helpers)

RULES = """\
[rule "virus-to-junk"]
threat = VIRUS
action = move
folder = junkemail

[default]
action = log
"""
# Maximum wait for the daemon to reach an expected state; passing runs take far less.
WAIT_SECONDS = 60


@pytest.fixture
def ca(tmp_path):
    return harness.make_ca(tmp_path / "ca")


def feed_settings(sim, ca, folder, proxy=None):
    token = folder / "feed-token"
    token.write_text(sim.token + "\n")
    text = (
        '[feed "main"]\n'
        f"url = {sim.url}\n"
        f"channel = {sim.channel}\n"
        f"token_file = {token}\n"
        f"ca_file = {ca / 'ca.pem'}\n"
    )
    if proxy:
        secret = folder / "proxy-password"
        secret.write_text(proxy.password + "\n")
        text += (
            f"proxy = {proxy.url}\n"
            f"proxy_user = {proxy.user}\n"
            f"proxy_password_file = {secret}\n"
            f"proxy_auth = {proxy.auth}\n"
        )
    return text


class Daemon:
    """`clawback run` in the background, with its log in the installation folder."""

    def __init__(self, clawback):
        self.clawback = clawback
        self.log = open(clawback.folder / "daemon.log", "a")
        self.process = subprocess.Popen(
            [BINARY, "--config", str(clawback.config), "run"], stdout=self.log, stderr=self.log
        )

    def wait_for(self, condition, what):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if condition():
                return
            assert self.process.poll() is None, f"daemon exited early: {self.log_text()}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{self.log_text()}")

    def log_text(self):
        self.log.flush()
        return (self.clawback.folder / "daemon.log").read_text()

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.log.close()
        return self.process.returncode


def stored_events(store):
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error:
        return 0


def run_sample_through_daemon(tmp_path, ca, proxy=None):
    sim = harness.FeedSim(tmp_path, ca, events=SAMPLE_FEED)
    clawback = Clawback(tmp_path, RULES, extra_settings="")
    with open(clawback.config, "a") as config:
        config.write(feed_settings(sim, ca, tmp_path, proxy))
    daemon = Daemon(clawback)
    try:
        daemon.wait_for(lambda: stored_events(clawback.store) >= 10, "10 stored events")
        daemon.wait_for(
            lambda: all(job["state"] == "done" for job in clawback.json_lines("jobs")),
            "every job done",
        )
    finally:
        assert daemon.stop() == 0, daemon.log_text()
        sim.stop()
    return clawback


def check_sample_stored(clawback):
    events = clawback.json_lines("events")
    assert [event["status"] for event in events] == [
        "accepted", "ignored", "accepted", "ignored", "accepted",
        "ignored", "accepted", "ignored", "accepted", "duplicate",
    ]
    assert [event["raw"] for event in events] == SAMPLE_FEED.read_text().splitlines()
    assert all(event["source"] == "feed:main" for event in events)
    jobs = clawback.json_lines("jobs")
    assert len(jobs) == 5
    assert [job["rule"] for job in jobs] == [
        "virus-to-junk", "(default)", "virus-to-junk", "(default)", "virus-to-junk",
    ]


def test_daemon_stores_sample_feed(tmp_path, ca):
    clawback = run_sample_through_daemon(tmp_path, ca)
    check_sample_stored(clawback)
    status = json.loads((tmp_path / "clawback.db.status.json").read_text())
    assert status["feeds"][0]["name"] == "main"
    assert status["feeds"][0]["messages"] == 10


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_daemon_through_proxy(tmp_path, ca, auth):
    proxy = harness.Proxy(tmp_path, auth)
    proxy.auth = auth
    try:
        clawback = run_sample_through_daemon(tmp_path, ca, proxy)
    finally:
        proxy.stop()
    check_sample_stored(clawback)
    assert proxy.records(), "the proxy saw no connection"


def test_daemon_killed_while_streaming(tmp_path, ca):
    sim = harness.FeedSim(tmp_path, ca, generate=10_000, rate=0)
    clawback = Clawback(tmp_path, RULES)
    with open(clawback.config, "a") as config:
        config.write(feed_settings(sim, ca, tmp_path))
    daemon = Daemon(clawback)
    try:
        daemon.wait_for(lambda: stored_events(clawback.store) >= 2000, "2000 stored events")
        first_sent = sim.records("sent")[0]["t"]
        while time.time() < first_sent + 1.5:
            time.sleep(0.01)
        os.kill(daemon.process.pid, signal.SIGKILL)
        killed_at = time.time()
        daemon.process.wait()
        daemon.log.close()

        daemon = Daemon(clawback)
        daemon.wait_for(
            lambda: len(sim.records("sent")) >= 10_000 and stored_events(clawback.store) > 0,
            "the simulator to send every event",
        )
        time.sleep(1)
    finally:
        daemon.stop()
        sim.stop()

    with sqlite3.connect(clawback.store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = [event["raw"] for event in clawback.json_lines("events")]
    assert len(stored) == len(set(stored)), "an event was stored twice"
    sent_early = [r["data"] for r in sim.records("sent") if r["t"] < killed_at - 1.0]
    assert sent_early, "nothing was sent before the kill"
    missing = set(sent_early) - set(stored)
    assert not missing, f"{len(missing)} events sent over 1 s before the kill are not stored"
    jobs = clawback.json_lines("jobs")
    assert len({job["event"] for job in jobs}) == len(jobs)


def test_daemon_keeps_bad_messages(tmp_path, ca):
    scenario = {"connections": [{"steps": [
        ["binary"], ["bad_utf8"], ["big", 2 * 1024 * 1024], ["non_json", "hello"],
        ["send", "all"], ["hold"],
    ]}]}
    sim = harness.FeedSim(tmp_path, ca, events=SAMPLE_FEED, scenario=scenario)
    clawback = Clawback(tmp_path, RULES)
    with open(clawback.config, "a") as config:
        config.write(feed_settings(sim, ca, tmp_path))
    daemon = Daemon(clawback)
    try:
        daemon.wait_for(lambda: stored_events(clawback.store) >= 14, "14 stored messages")
    finally:
        assert daemon.stop() == 0, daemon.log_text()
        sim.stop()

    events = clawback.json_lines("events")
    rejected = [event for event in events if event["status"] == "rejected"]
    assert [event["reject_reason"] for event in rejected] == [
        "transport", "transport", "too_large", "not_json",
    ]
    assert rejected[3]["raw"] == "hello"
    assert "raw_hex" in rejected[1], "invalid UTF-8 must be kept byte for byte"
    assert len([event for event in events if event["status"] == "accepted"]) == 5
    status = json.loads((tmp_path / "clawback.db.status.json").read_text())
    assert status["feeds"][0]["reconnects"] == 0
