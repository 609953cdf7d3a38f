#!/usr/bin/python3
"""The main job on the embedded default, end to end on this machine.

Starts the Retarus feed simulator with the sample feed and the Microsoft Graph simulator
with the demo mailboxes (etc/demo/graph-mailboxes.json), runs the clawback daemon against
both with the demo rules (etc/demo/rules.conf), waits until every job has finished, and
prints per event the decision, the outcome and where the mail is now.

Run by scripts/demo.sh after the build. Everything goes to a temporary folder.
"""
import json
import os
import pathlib
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = pathlib.Path(__file__).resolve().parents[1]
BINARY = os.environ.get("CLAWBACK_BIN", str(TOP / "build" / "clawback"))
SAMPLE = TOP / "tests" / "data" / "feed-sample.jsonl"
# Maximum wait for the daemon to finish every job; the demo needs a few seconds.
WAIT_SECONDS = 120


def start_graph_sim(work, ca):
    fixture = (TOP / "etc" / "demo" / "graph-mailboxes.json").read_text()
    secret = secrets.token_urlsafe(24)
    (work / "graph-fixture.json").write_text(fixture.replace("@SECRET@", secret))
    (work / "graph-secret").write_text(secret + "\n")
    os.chmod(work / "graph-secret", 0o600)
    log = open(work / "graph-sim.log", "w")
    process = subprocess.Popen(
        ["node", str(TOP / "tests" / "sim" / "graph" / "graph_sim.js"), "--cert", str(ca / "server.pem"),
         "--key", str(ca / "server.key"), "--port", "0", "--fixture", str(work / "graph-fixture.json"),
         "--latency-ms", "100"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    port = json.loads(process.stdout.readline())["port"]
    return process, port


def start_feed_sim(work, ca):
    token = secrets.token_urlsafe(24)
    (work / "feed-token").write_text(token + "\n")
    os.chmod(work / "feed-token", 0o600)
    log = open(work / "feed-sim.log", "w")
    process = subprocess.Popen(
        ["/usr/bin/python3", str(TOP / "tests" / "sim" / "feed" / "feed_sim.py"),
         "--cert", str(ca / "server.pem"), "--key", str(ca / "server.key"),
         "--token-file", str(work / "feed-token"), "--channel", "demo-feed",
         "--events", str(SAMPLE), "--record", str(work / "feed-sent.jsonl")],
        stdout=subprocess.PIPE, stderr=log, text=True)
    port = int(process.stdout.readline().split()[1])
    return process, port


def write_settings(work, ca, feed_port, graph_port):
    fixture = json.loads((TOP / "etc" / "demo" / "graph-mailboxes.json").read_text())
    settings = work / "clawback.conf"
    settings.write_text(f"""\
[general]
store = {work}/clawback.db
rules = {TOP}/etc/demo/rules.conf
backend = graph
log_level = notice

[feed "demo"]
url = wss://127.0.0.1:{feed_port}/email/siem/v1/websocket
channel = demo-feed
token_file = {work}/feed-token
ca_file = {ca}/ca.pem

[graph]
tenant = {fixture["tenants"][0]["id"]}
client_id = {fixture["apps"][0]["client_id"]}
client_secret_file = {work}/graph-secret
authority_url = https://127.0.0.1:{graph_port}
graph_url = https://127.0.0.1:{graph_port}
ca_file = {ca}/ca.pem

[executor]
not_found_searches = 2
not_found_interval_seconds = 2
""")
    return settings


def clawback_json(settings, *args):
    output = subprocess.run([BINARY, "--config", str(settings), *args, "--json"],
                            check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


FINISHED = {"done", "not_found", "skipped", "retry_queue", "final_error"}


def wait_until_finished(settings, daemon):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit("the daemon exited early; see its log above")
        events = clawback_json(settings, "events")
        jobs = clawback_json(settings, "jobs")
        if len(events) >= len(SAMPLE.read_text().splitlines()) and jobs and \
                all(job["state"] in FINISHED for job in jobs):
            return events, jobs
        time.sleep(0.2)
    raise SystemExit(f"not every job finished within {WAIT_SECONDS} s")


def mail_locations(graph_port, ca):
    context = ssl.create_default_context(cafile=str(ca / "ca.pem"))
    with urllib.request.urlopen(f"https://127.0.0.1:{graph_port}/_sim/state", context=context) as reply:
        state = json.load(reply)
    return state


def describe_locations(state, mailbox, message_id):
    """Returns where the copies of one mail are now, from the simulator's state."""
    places = []
    for box in state["mailboxes"]:
        if box["address"].lower() != mailbox:
            continue
        for message in box["messages"]:
            if message["internetMessageId"] == message_id:
                places.append("purged" if message["purged"] else message["folderPath"])
    return ", ".join(places) or "nowhere"


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="clawback-demo-"))
    ca = work / "ca"
    subprocess.run(["sh", str(TOP / "tests" / "sim" / "make_test_ca.sh"), str(ca)], check=True)
    graph, graph_port = start_graph_sim(work, ca)
    feed, feed_port = start_feed_sim(work, ca)
    settings = write_settings(work, ca, feed_port, graph_port)
    daemon = subprocess.Popen([BINARY, "--config", str(settings), "run"])
    try:
        events, jobs = wait_until_finished(settings, daemon)
        state = mail_locations(graph_port, ca)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        feed.terminate()
        graph.terminate()

    jobs_by_event = {job["event"]: job for job in jobs}
    print()
    for number, event in enumerate(events, 1):
        line = f"event {number:2d} {event.get('type') or '-':10s} {event['status']}"
        if event["status"] == "duplicate":
            line += f" of event {event['duplicate_of']}: not acted on again"
        print(line)
        job = jobs_by_event.get(event["event"])
        if not job:
            continue
        action = job["action"] + (":" + job["folder"] if job.get("folder") else "")
        print(f"    {job['mailbox']}  {job['message_id']}")
        print(f"    rule {job['rule']} -> {action}{' (dry run)' if job['dry_run'] else ''}; "
              f"{job['state']}: {job.get('outcome') or job.get('error', '')}")
        print(f"    now in: {describe_locations(state, job['mailbox'], job['message_id'])}")
    if os.environ.get("KEEP") == "1":
        print(f"\ndemo files kept in {work}")
    else:
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    sys.exit(main())
