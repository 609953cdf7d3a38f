"""Shared helpers of the Python benchmarks in bench/: simulators, settings, measurements.

The benchmarks run a clawback binary that is already built (default build/clawback) against the
Graph simulator (tests/sim/graph, Node) and the feed simulator (tests/sim/feed, Python), all on
127.0.0.1, in a temporary folder. Nothing here is a test: the scripts print measured figures and
ratios, and never compare a time against a threshold to pass or fail.
"""

import argparse
import atexit
import datetime
import http.client
import json
import os
import pathlib
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

SOURCE_DIR = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SOURCE_DIR / "tests" / "e2e"))
sys.path.insert(0, str(SOURCE_DIR / "tests" / "sim" / "feed"))

import harness  # noqa: E402  (feed simulator helpers)
from simhelpers_graph import GraphSim, make_test_ca  # noqa: E402

# Tenant and application of the Graph simulator fixture (clawback requires GUIDs).
TENANT = "8d1c7a52-0000-4000-8000-00000000b001"
DOMAIN = "corp.example"
CLIENT_ID = "11111111-2222-4333-8444-555555555555"
CLIENT_SECRET = "bench-secret"
CAMPAIGN_MESSAGE_ID = "<campaign+1=x/y@evil.example>"
RULES_MOVE_TO_JUNK = """\
[rule "phish-to-junk"]
threat = URL
action = move
folder = junkemail

[default]
action = move
folder = junkemail
"""
RULES_LOG = "[default]\naction = log\n"
# Maximum wait for one benchmark phase. A healthy run takes a small fraction of it.
PHASE_TIMEOUT_S = 900


def parse_args(description, extra=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--binary", default=str(SOURCE_DIR / "build" / "clawback"),
                        help="clawback binary to measure (default: build/clawback)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, store, simulator log) and print its path")
    if extra:
        extra(parser)
    args = parser.parse_args()
    args.binary = str(pathlib.Path(args.binary).resolve())
    if not os.access(args.binary, os.X_OK):
        parser.error(f"{args.binary} is not an executable: build it first or pass --binary")
    return args


def work_folder(name, keep):
    """Create the run's temporary folder, removed at exit unless keep is set."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"clawback-bench-{name}-"))
    if keep:
        print(f"folder={folder}")
    else:
        atexit.register(shutil.rmtree, folder, True)
    return folder


def machine_line():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"machine: {os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}, "
            f"date {datetime.date.today().isoformat()}")


def pzd_event(index, recipient, mime_id):
    """Build one Retarus PZD event (URL threat) as a JSON line."""
    return json.dumps({
        "version": "1.0", "host": "events.retarus.com", "customer": "CUST0042",
        "class": "THREAT", "type": "PZD", "direction": "INBOUND", "status": "DETECTED",
        "ts": "2026-11-30 08:14:03 +0100", "sourceIp": "192.0.2.10",
        "sender": "billing@invoices.example.net", "recipient": recipient, "mimeId": mime_id,
        "rmxId": "20261130-081402-Bench%06d-0@mailin07" % index,
        "metaData": {"threatType": "URL", "uniformResourceLocator": "https://phish.example/%d" % index,
                     "details": str(100000 + index)},
    }, separators=(",", ":"))


def fixture(mailboxes):
    """Build a Graph simulator fixture from a list of (address, [Message-ID, ...])."""
    return {
        "tenants": [{"id": TENANT, "domains": [DOMAIN]}],
        "apps": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
        "mailboxes": [{"address": address,
                       "messages": [{"internetMessageId": m, "subject": "Invoice"} for m in ids]}
                      for address, ids in mailboxes],
    }


def start_graph_sim(folder, mailboxes, latency_ms):
    """Start the Graph simulator with Microsoft's limits on and a fixed latency per response."""
    ca = make_test_ca(folder / "ca")
    return GraphSim(ca, fixture(mailboxes), args=["--latency-ms", str(latency_ms)])


def write_settings(folder, rules, sim=None, extra=""):
    """Write clawback.conf and rules.conf; with sim, the Graph backend points at the simulator."""
    store = folder / "clawback.db"
    (folder / "rules.conf").write_text(rules)
    text = (f"[general]\nstore = {store}\nrules = {folder / 'rules.conf'}\n"
            f"backend = {'graph' if sim else 'log'}\nlog_level = warning\n")
    if sim:
        secret = folder / "graph-secret"
        secret.write_text(CLIENT_SECRET + "\n")
        secret.chmod(0o600)
        text += (f"[graph]\ntenant = {TENANT}\nclient_id = {CLIENT_ID}\n"
                 f"client_secret_file = {secret}\nauthority_url = {sim.url}\n"
                 f"graph_url = {sim.url}\nca_file = {sim.ca}\n")
    config = folder / "clawback.conf"
    config.write_text(text + extra)
    return config, store


def run_measured(command, log_path, timeout=PHASE_TIMEOUT_S):
    """Run a command to its end; return (wall seconds, exit status, rusage of the child)."""
    with open(log_path, "ab") as log:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=log)
        usage = wait_child(process, timeout)
        return time.monotonic() - started, process.returncode, usage


def wait_child(process, timeout):
    """Reap a child with wait4 so its own CPU time and peak RSS can be reported."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{process.args[0]} did not finish in {timeout} s")
        time.sleep(0.01)


class Daemon:
    """`clawback run` in the background; stop() returns its rusage."""

    def __init__(self, binary, config, log_path):
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([binary, "--config", str(config), "run"],
                                        stdout=self.log, stderr=self.log)

    def peak_rss_kb(self):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        usage = wait_child(self.process, 60)
        self.log.close()
        return usage


def cpu_seconds(usage):
    return usage.ru_utime + usage.ru_stime


def sim_time(entry):
    """Start of a simulator log entry in seconds since the epoch (the log has milliseconds)."""
    return datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def sim_end(entry):
    return sim_time(entry) + (entry.get("duration_ms") or 0) / 1000.0


def is_move(entry):
    return entry["method"] == "POST" and entry["path"].split("?")[0].endswith("/move")


def summarize_log(entries):
    """Count the Graph requests by status and by step kind."""
    statuses, kinds = {}, {}
    for e in entries:
        statuses[str(e["status"])] = statuses.get(str(e["status"]), 0) + 1
        path = e["path"].split("?")[0]
        if "/oauth2/" in path:
            kind = "token"
        elif is_move(e):
            kind = "move"
        elif path.endswith("/messages"):
            kind = "search"
        elif "/mailFolders/" in path:
            kind = "folder"
        else:
            kind = "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    return statuses, kinds


def wait_until(condition, what, timeout=PHASE_TIMEOUT_S, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


class SequentialClient:
    """One HTTPS connection (HTTP/1.1), one request after another, as a simple script would do."""

    def __init__(self, sim):
        context = ssl.create_default_context(cafile=sim.ca)
        self.connection = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context)
        self.reconnects = 0
        body = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "scope": "https://graph.microsoft.com/.default"})
        token = self.request("POST", f"/{TENANT}/oauth2/v2.0/token", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})["access_token"]
        self.headers = {"Authorization": f"Bearer {token}", "Prefer": 'IdType="ImmutableId"'}

    def request(self, method, path, body=None, headers=None):
        try:
            self.connection.request(method, path, body=body, headers=headers or self.headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            # The server closed the kept-alive connection: reconnect once, as a script would.
            self.reconnects += 1
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers or self.headers)
            response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:200]!r}")
        return json.loads(data) if data else {}

    def remediate(self, mailbox, message_id, folder_lookups):
        """Search, look up the hit's folder and the destination when clawback does, then move."""
        user = "/v1.0/users/" + urllib.parse.quote(mailbox, safe="")
        query = urllib.parse.quote(f"internetMessageId eq '{message_id}'", safe="")
        hits = self.request("GET", f"{user}/messages?$filter={query}&$select=id,parentFolderId")["value"]
        for hit in hits:
            if folder_lookups:
                self.request("GET", f"{user}/mailFolders/{hit['parentFolderId']}?$select=displayName")
                self.request("GET", f"{user}/mailFolders/junkemail")
            move_headers = dict(self.headers, **{"Content-Type": "application/json"})
            self.request("POST", f"{user}/messages/{urllib.parse.quote(hit['id'], safe='')}/move",
                         json.dumps({"destinationId": "junkemail"}), move_headers)
        return len(hits)


def feed_sim(folder, ca, **kwargs):
    return harness.FeedSim(folder, ca, **kwargs)


def feed_settings(sim, ca, folder):
    token = folder / "feed-token"
    token.write_text(sim.token + "\n")
    token.chmod(0o600)
    return (f'[feed "main"]\nurl = {sim.url}\nchannel = {sim.channel}\n'
            f"token_file = {token}\nca_file = {ca / 'ca.pem'}\n")
