"""End-to-end: the daemon as a service: sd_notify, reload, pause, status, and `clawback doctor`."""

import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest

from clawback_env import BINARY, SAMPLE_FEED, Clawback
from simhelpers_graph import GraphSim, make_test_ca
from test_daemon_feed import Daemon, feed_settings, harness
from test_graph_backend import base_fixture, graph_settings

RULES = """\
[rule "virus-to-junk"]
threat = VIRUS
action = move
folder = junkemail

[default]
action = log
"""
# Maximum wait for one notification from the daemon; passing runs take far less.
NOTIFY_WAIT_SECONDS = 30


class NotifySocket:
    """A stand-in for systemd's notification socket that collects what the daemon sends."""

    def __init__(self, folder):
        self.path = str(pathlib.Path(folder) / "notify.sock")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.path)
        self.socket.settimeout(0.2)
        self.messages = []

    def wait_for(self, prefix):
        deadline = time.monotonic() + NOTIFY_WAIT_SECONDS
        while time.monotonic() < deadline:
            for message in self.messages:
                for line in message.splitlines():
                    if line.startswith(prefix):
                        return line
            try:
                self.messages.append(self.socket.recv(4096).decode())
            except socket.timeout:
                pass
        raise AssertionError(f"no {prefix!r} notification; got {self.messages}")

    def close(self):
        self.socket.close()


def verbose(clawback):
    """Lets the daemon log notices (reloads, pauses), which the default test level hides."""
    text = clawback.config.read_text().replace("log_level = warning", "log_level = notice")
    clawback.config.write_text(text)
    return clawback


def start_daemon(clawback, env):
    log = open(clawback.folder / "daemon.log", "a")
    return subprocess.Popen([BINARY, "--config", str(clawback.config), "run"], stdout=log,
                            stderr=log, env=env), log


def test_daemon_notifies_systemd(tmp_path):
    clawback = Clawback(tmp_path, RULES)
    notify = NotifySocket(tmp_path)
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000", "PATH": "/usr/bin:/bin"}
    process, log = start_daemon(clawback, env)
    try:
        notify.wait_for("READY=1")
        status = notify.wait_for("STATUS=")
        assert "feeds connected" in status
        notify.wait_for("WATCHDOG=1")
        process.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        notify.wait_for("STOPPING=1")
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
        notify.close()


def test_reload_applies_new_rules(tmp_path):
    ca = harness.make_ca(tmp_path / "ca")
    sim = harness.FeedSim(tmp_path, ca, events=SAMPLE_FEED,
                          scenario={"connections": [{"steps": [["send", 1], ["sleep", 3],
                                                               ["send", "all"], ["hold"]]}]})
    clawback = verbose(Clawback(tmp_path, RULES))
    with open(clawback.config, "a") as config:
        config.write(feed_settings(sim, ca, tmp_path))
    daemon = Daemon(clawback)
    try:
        daemon.wait_for(lambda: len(clawback.json_lines("jobs")) == 1, "the first job")
        clawback.rules.write_text('[rule "everything-skipped"]\naction = skip\n')
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: "rules reloaded" in daemon.log_text(), "the reload")
        daemon.wait_for(lambda: len(clawback.json_lines("jobs")) == 5, "five jobs")
    finally:
        daemon.stop()
        sim.stop()
    rules = [job["rule"] for job in clawback.json_lines("jobs")]
    assert rules[0] == "virus-to-junk"
    assert rules[1:] == ["everything-skipped"] * 4


def test_reload_keeps_rules_when_invalid(tmp_path):
    clawback = verbose(Clawback(tmp_path, RULES))
    daemon = Daemon(clawback)
    try:
        daemon.wait_for(lambda: (tmp_path / "clawback.db.status.json").exists(), "the status file")
        clawback.rules.write_text('[rule "broken"]\naction = teleport\n')
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: "rules reload failed" in daemon.log_text(), "the failed reload")
        assert daemon.process.poll() is None
    finally:
        assert daemon.stop() == 0


def test_status_pause_and_resume(tmp_path):
    clawback = Clawback(tmp_path, RULES)
    assert clawback.run("status", check=False).returncode == 3
    clawback.run("pause")
    daemon = Daemon(clawback)
    try:
        daemon.wait_for(lambda: clawback.run("status", check=False).returncode == 0, "status")
        daemon.wait_for(lambda: "processing paused" in clawback.run("status").stdout,
                        "the paused status")
        clawback.run("replay", "--no-execute", "--quiet", str(SAMPLE_FEED))
        time.sleep(2)
        assert {job["state"] for job in clawback.json_lines("jobs")} == {"queued"}
        clawback.run("resume")
        daemon.wait_for(lambda: {job["state"] for job in clawback.json_lines("jobs")} == {"done"},
                        "every job done after resume")
    finally:
        assert daemon.stop() == 0


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    folder = tmp_path_factory.mktemp("doctor-ca")
    make_test_ca(folder, "app1")
    sim = GraphSim(folder)
    sim.pki = folder
    yield sim
    sim.stop()


def doctor_setup(folder, graph, canary="anna.schmidt@contoso.example"):
    graph.control("DELETE", "faults")
    graph.load_fixture(base_fixture(graph.pki))
    rules = RULES + '\n[rule "quarantine"]\nsender = glob:*@nowhere.example\naction = move\nfolder = Quarantine/PZD\n'
    clawback = Clawback(folder, rules, backend="graph",
                        extra_settings=graph_settings(folder, graph, graph.pki))
    with open(clawback.config, "a") as config:
        config.write("")
    text = clawback.config.read_text().replace("[graph]\n", f"[graph]\ncanary_mailbox = {canary}\n")
    clawback.config.write_text(text)
    return clawback


def test_doctor_passes(tmp_path, graph):
    clawback = doctor_setup(tmp_path, graph)
    result = clawback.run("doctor", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    assert "Quarantine/PZD" in result.stdout
    assert "FAILED" not in result.stdout


def test_doctor_names_wrong_secret(tmp_path, graph):
    clawback = doctor_setup(tmp_path, graph)
    (tmp_path / "client-secret").write_text("not-the-secret\n")
    result = clawback.run("doctor", check=False)

    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "not-the-secret" not in result.stdout + result.stderr
    assert "secret" in result.stdout.lower()


def test_doctor_names_missing_permission(tmp_path, graph):
    clawback = doctor_setup(tmp_path, graph)
    fixture = base_fixture(graph.pki)
    fixture["apps"][0]["mailbox_scope"] = ["nobody@contoso.example"]
    graph.load_fixture(fixture)
    result = clawback.run("doctor", check=False)

    assert result.returncode == 1
    assert "Mail.ReadWrite" in result.stdout or "access policy" in result.stdout, result.stdout
