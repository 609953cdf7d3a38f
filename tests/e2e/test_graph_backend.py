"""End-to-end: the real clawback binary against the Graph simulator.

`clawback replay` takes the PZD events of tests/data/feed-sample.jsonl (and two more events
for a purged mail and one already in junkemail) through rules, store and the executor with
backend = graph. The simulator keeps the mailboxes of tests/e2e/fixtures/graph_sample_mailboxes.json,
so each test checks through /_sim/state where every mail ended up, and through /_sim/log how many
requests were made.

The executor of `replay` stops when no job is due. Jobs waiting for a retry or a re-search are
run by replaying an empty file once they are due (run_until_settled).
"""

import copy
import json
import os
import pathlib
import re
import subprocess
import time

import pytest

from clawback_env import SAMPLE_FEED, Clawback
from simhelpers_graph import GraphSim, make_test_ca

FIXTURE = pathlib.Path(__file__).resolve().parent / "fixtures" / "graph_sample_mailboxes.json"
CLIENT_SECRET = "Zq8~e2E.graph-test_secret.Hx41vN0pLmT"
PKCS12_PASSWORD = "p12-test-password-7Qw"
IMMUTABLE_PREFIX = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"
ANNA_MESSAGE_ID = "<20261130071402.4F2A1@mx1.invoices.example.net>"
# Rounds of "replay an empty file" after the first replay before a test gives up.
MAX_SETTLE_ROUNDS = 20
UNFINISHED_STATES = {"queued", "running", "retry_wait", "received"}

EXECUTOR_SETTINGS = """\
[executor]
max_attempts = 4
retry_base_seconds = 1
retry_max_seconds = 1
not_found_searches = 2
not_found_interval_seconds = 1
"""


def extra_event(recipient, message_id, rmx_suffix):
    """A PZD event like line 1 of the sample feed, for another recipient and Message-ID."""
    with open(SAMPLE_FEED, encoding="utf-8") as sample:
        event = json.loads(sample.readline())
    event["recipient"] = recipient
    event["mimeId"] = message_id
    event["rmxId"] = f"20261130-111111-{rmx_suffix}-0@mailin07"
    return json.dumps(event)


EXTRA_EVENTS = [
    extra_event("peter.berg@contoso.example", "<purged.7c1e@invoices.example.net>", "Purged"),
    extra_event("sofia.klein@contoso.example", "<junk.9d2f@invoices.example.net>", "InJunk"),
]


def load_fixture_file():
    with open(FIXTURE, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graph-ca")
    make_test_ca(folder, "app1")
    pkcs12 = folder / "app1.p12"
    subprocess.run(["openssl", "pkcs12", "-export", "-inkey", str(folder / "app1.key"),
                    "-in", str(folder / "app1.pem"), "-out", str(pkcs12),
                    "-passout", f"pass:{PKCS12_PASSWORD}"], check=True, capture_output=True)
    return folder


@pytest.fixture(scope="module")
def sim(pki):
    simulator = GraphSim(pki)
    yield simulator
    simulator.stop()


def base_fixture(pki):
    fixture = load_fixture_file()
    app = fixture["apps"][0]
    app["client_secret"] = CLIENT_SECRET
    app["certificates"] = [(pki / "app1.pem").read_text()]
    return fixture


@pytest.fixture
def graph(sim, pki):
    """The simulator reset to the sample mailboxes, without faults, with default settings."""
    sim.control("DELETE", "faults")
    sim.configure(token_lifetime_s=3599, permanent_delete=True, latency_ms=0)
    sim.load_fixture(base_fixture(pki))
    sim.control("POST", "reset-log")
    return sim


def write_secret(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def graph_settings(folder, sim, pki, credential="secret", alg="PS256", timeout=5):
    fixture = load_fixture_file()
    lines = [
        "[graph]",
        "tenant = contoso.example",
        f"client_id = {fixture['apps'][0]['client_id']}",
        f"authority_url = {sim.url}",
        f"graph_url = {sim.url}",
        f"ca_file = {sim.ca}",
        f"timeout_seconds = {timeout}",
    ]
    if credential == "secret":
        secret = write_secret(folder / "client-secret", CLIENT_SECRET + "\n")
        lines.append(f"client_secret_file = {secret}")
    elif credential == "pem":
        key = write_secret(folder / "app1.key", (pki / "app1.key").read_text())
        lines += [f"certificate_file = {pki / 'app1.pem'}", f"key_file = {key}",
                  f"assertion_alg = {alg}"]
    else:
        password = write_secret(folder / "p12-password", PKCS12_PASSWORD + "\n")
        lines += [f"certificate_file = {pki / 'app1.p12'}",
                  f"pkcs12_password_file = {password}", f"assertion_alg = {alg}"]
    return "\n".join(lines) + "\n\n" + EXECUTOR_SETTINGS


def make_clawback(folder, sim, pki, rules, log_level="warning", **settings):
    folder = pathlib.Path(folder)
    cb = Clawback(folder, rules, backend="graph",
                  extra_settings=graph_settings(folder, sim, pki, **settings))
    text = cb.config.read_text().replace("log_level = warning", f"log_level = {log_level}")
    cb.config.write_text(text)
    return cb


def write_feed(folder, lines):
    path = pathlib.Path(folder) / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def sample_feed_with_extras(folder):
    lines = SAMPLE_FEED.read_text().splitlines()
    return write_feed(folder, lines + EXTRA_EVENTS)


def run_until_settled(cb, feed):
    """Replays feed, then reruns the executor until every job has reached a final state.

    Returns the jobs and the stderr of every run joined.
    """
    stderr = [cb.run("replay", str(feed)).stderr]
    empty = cb.folder / "empty.jsonl"
    empty.write_text("")
    for _ in range(MAX_SETTLE_ROUNDS):
        jobs = cb.json_lines("jobs")
        waiting = [job for job in jobs if job["state"] in UNFINISHED_STATES]
        if not waiting:
            return jobs, "".join(stderr)
        due = min(job.get("next_attempt_ms", 0) for job in waiting)
        delay = due / 1000.0 - time.time()
        if delay > 0:
            time.sleep(min(delay + 0.05, 5.0))
        stderr.append(cb.run("replay", str(empty)).stderr)
    raise AssertionError(f"jobs still unfinished after {MAX_SETTLE_ROUNDS} rounds: {waiting}")


def jobs_by_mailbox(jobs):
    return {job["mailbox"]: job for job in jobs}


def message_places(state):
    """Maps the label of each fixture message (the end of its immutable id) to its folder."""
    places = {}
    for mailbox in state["mailboxes"]:
        for message in mailbox["messages"]:
            label = message["immutableId"].removeprefix(IMMUTABLE_PREFIX)
            places[label] = "purged" if message["purged"] else message["folder"]
    return places


def audit_attempts(cb, job_id):
    """The attempt rows of `clawback queue show JOB`, as parsed JSON details."""
    output = cb.run("queue", "show", str(job_id)).stdout
    rows = []
    for line in output.splitlines():
        match = re.match(r"\s+\S+ attempt\s+(\{.*\})$", line)
        if match:
            rows.append(json.loads(match.group(1)))
    return rows


def graph_log(sim, mailbox=None):
    entries = [e for e in sim.log() if e["path"].startswith("/v1.0/")]
    if mailbox:
        entries = [e for e in entries if (e.get("mailbox") or "").lower() == mailbox.lower()]
    return entries


def token_log(sim):
    return [e for e in sim.log() if "/oauth2/" in e["path"]]


# ---------------------------------------------------------------------------------------------
# 1. Every action on every sample event

START = {
    "AnnaInboxCopy": "inbox",
    "AnnaInvoicesCopy": "Inbox/Invoices",
    "AnnaUnrelated": "inbox",
    "JonasItSupport": "Inbox/IT Support",
    "MariaDeletedItems": "deleteditems",
    "BuchhaltungInbox": "inbox",
    "LukasInbox": "inbox",
    "PeterPurged": "purged",
    "SofiaJunk": "junkemail",
}
ACTED_ON = ["AnnaInboxCopy", "AnnaInvoicesCopy", "JonasItSupport", "MariaDeletedItems",
            "BuchhaltungInbox", "LukasInbox", "SofiaJunk"]

ACTIONS = {
    "move-junk": ("action = move\nfolder = junkemail\n", "junkemail"),
    "move-path": ("action = move\nfolder = Quarantine/PZD\n", "Quarantine/PZD"),
    "soft-delete": ("action = soft_delete\n", "recoverableitemsdeletions"),
    "hard-delete": ("action = hard_delete\n", "purged"),
    "log-only": ("action = log\n", None),
    "dry-run": ("action = move\nfolder = junkemail\ndry_run = yes\n", None),
}


@pytest.mark.parametrize("name", list(ACTIONS))
def test_action_on_sample_events(name, graph, pki, tmp_path):
    """Each action on the sample feed: where every mail ends up and what was acted on.

    move-junk: Sofia's copy is already in Junk Email. A fresh job moves to the well-known name
    without looking up the folder's id, so it sends one move into the folder the mail is in. That
    changes nothing, and the job reports "already in place" from the move response. A job
    recovered after a crash looks the id up first and sends no move (test_graph_op.c).
    """
    rule, destination = ACTIONS[name]
    cb = make_clawback(tmp_path, graph, pki, "[default]\n" + rule)

    jobs, _ = run_until_settled(cb, sample_feed_with_extras(tmp_path))

    places = message_places(graph.state())
    expected = dict(START)
    if destination:
        for label in ACTED_ON:
            expected[label] = destination
    assert places == expected

    by_mailbox = jobs_by_mailbox(jobs)
    assert len(jobs) == 7
    assert set(by_mailbox) == {
        "anna.schmidt@contoso.example", "jonas.weber@contoso.example",
        "maria.lopez@contoso.example", "buchhaltung@contoso.example",
        "lukas.mueller@contoso.example", "peter.berg@contoso.example",
        "sofia.klein@contoso.example",
    }
    purged = by_mailbox.pop("peter.berg@contoso.example")
    assert purged["state"] == "not_found", purged
    assert purged["searches"] == 2, purged
    for job in by_mailbox.values():
        assert job["state"] == "done", job
        assert job["outcome"], job

    anna = by_mailbox["anna.schmidt@contoso.example"]
    assert "Inbox" in anna["found_in"], anna
    assert "Invoices" in anna["found_in"], anna
    assert "IT Support" in by_mailbox["jonas.weber@contoso.example"]["found_in"]
    assert "Deleted Items" in by_mailbox["maria.lopez@contoso.example"]["found_in"]
    if name == "move-junk":
        assert "already in place" in by_mailbox["sofia.klein@contoso.example"]["outcome"]
    if name == "dry-run":
        for job in by_mailbox.values():
            assert "would" in job["outcome"], job

    stats = graph.stats()
    assert stats["messages_acted_on_more_than_once"] == []
    acted = {m["immutableId"].removeprefix(IMMUTABLE_PREFIX): (m["moves"], m["deletes"], m["permanent_deletes"])
             for m in stats["messages"]}
    if destination is None:
        assert acted == {}
        return
    one_action = (0, 0, 1) if name == "hard-delete" else (1, 0, 0)
    expected_acted = {label: one_action for label in ACTED_ON}
    assert acted == expected_acted


# ---------------------------------------------------------------------------------------------
# 2. Faults, on one event: the mail of buchhaltung@ (line 7 of the sample) moved to junkemail

FAULT_MAILBOX = "buchhaltung@contoso.example"
FAULT_LABEL = "BuchhaltungInbox"
MOVE_TO_JUNK = "[default]\naction = move\nfolder = junkemail\n"
# Requests of one clean run: search, move (to the name "junkemail"), folder name of the hit.
CLEAN_RUN_REQUESTS = 3
# Requests of a run after a failed move: search, junkemail folder id (the failed move may have
# been applied, so hits already there are skipped), move, folder name.
CHECKED_RUN_REQUESTS = 4


def sample_line(number):
    return SAMPLE_FEED.read_text().splitlines()[number - 1]


def run_fault_case(graph, pki, tmp_path, faults, rules=MOVE_TO_JUNK, line=7, **settings):
    """Replays one sample line with a fault script and returns (job, clawback, stderr)."""
    graph.set_faults(faults)
    cb = make_clawback(tmp_path, graph, pki, rules, **settings)
    jobs, stderr = run_until_settled(cb, write_feed(tmp_path, [sample_line(line)]))
    assert len(jobs) == 1, jobs
    return jobs[0], cb, stderr


def assert_audit_matches_log(graph, cb, job, mailbox=FAULT_MAILBOX):
    """Every request the simulator logged for the mailbox has one attempt row, and no more."""
    attempts = audit_attempts(cb, job["job"])
    logged = graph_log(graph, mailbox)
    assert len(attempts) == len(logged), (attempts, logged)
    assert sorted(a["client_request_id"] for a in attempts) == \
        sorted(e["client_request_id"] for e in logged)
    return logged


def test_clean_run_request_count(graph, pki, tmp_path):
    job, cb, _ = run_fault_case(graph, pki, tmp_path, [])

    assert job["state"] == "done", job
    assert job["attempts"] == 0
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    logged = assert_audit_matches_log(graph, cb, job)
    assert len(logged) == CLEAN_RUN_REQUESTS
    assert len(token_log(graph)) == 1


def test_throttle_burst_retried(graph, pki, tmp_path):
    faults = [{"type": "throttle", "retry_after": 1, "count": 3, "mailbox": FAULT_MAILBOX}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 3, job
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    logged = assert_audit_matches_log(graph, cb, job)
    assert [e["status"] for e in logged].count(429) == 3
    assert len(logged) == CLEAN_RUN_REQUESTS + 3
    assert graph.stats()["faults_fired"] == 3


@pytest.mark.parametrize("status", [503, 504])
def test_server_error_retried(status, graph, pki, tmp_path):
    faults = [{"type": "status", "status": status, "path": "/move$"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 1
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    logged = assert_audit_matches_log(graph, cb, job)
    assert [e["status"] for e in logged].count(status) == 1
    # The failed run: search, move.
    assert len(logged) == 2 + CHECKED_RUN_REQUESTS
    assert graph.stats()["messages_acted_on_more_than_once"] == []


def test_stall_times_out_and_retries(graph, pki, tmp_path):
    faults = [{"type": "stall", "path": "/move$"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults, timeout=2)

    assert job["state"] == "done", job
    assert job["attempts"] == 1
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    attempts = audit_attempts(cb, job["job"])
    timed_out = [a for a in attempts if a.get("result") == "temporary"]
    assert len(timed_out) == 1, attempts
    logged = assert_audit_matches_log(graph, cb, job)
    assert [e["status"] for e in logged].count("stalled") == 1, logged
    assert len(logged) == 2 + CHECKED_RUN_REQUESTS


def test_reset_before_request_retried(graph, pki, tmp_path):
    faults = [{"type": "reset", "when": "before", "path": "/messages\\?"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 1
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    logged = assert_audit_matches_log(graph, cb, job)
    assert [e["status"] for e in logged].count("reset") == 1
    assert len(logged) == 1 + CLEAN_RUN_REQUESTS


def test_reset_after_move_counts_as_done(graph, pki, tmp_path):
    # The move happens, but the response is lost: the next run finds the mail in junkemail.
    faults = [{"type": "reset", "when": "after", "path": "/move$"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 1
    assert "already in place" in job["outcome"], job
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    assert graph.stats()["messages_acted_on_more_than_once"] == []
    logged = assert_audit_matches_log(graph, cb, job)
    # First run: search, move (its response lost). Second run: search, junkemail folder id,
    # folder name; no second move.
    assert len(logged) == 2 + 3
    assert [e["path"].endswith("/move") for e in logged].count(True) == 1, logged


@pytest.mark.parametrize("body,path", [("garbage", "/messages\\?"), ("html", "/messages\\?"),
                                       ("empty", "/move$")])
def test_malformed_body_retried(body, path, graph, pki, tmp_path):
    faults = [{"type": "malformed", "body": body, "path": path}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 1
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    logged = assert_audit_matches_log(graph, cb, job)
    if path.startswith("/messages"):
        assert len(logged) == 1 + CLEAN_RUN_REQUESTS
    else:
        assert len(logged) == 2 + CHECKED_RUN_REQUESTS


def test_expired_token_refreshed_once(graph, pki, tmp_path):
    faults = [{"type": "expired_token", "path": "/move$"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 0
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    assert len(token_log(graph)) == 2
    logged = assert_audit_matches_log(graph, cb, job)
    assert [e["status"] for e in logged].count(401) == 1
    assert len(logged) == CLEAN_RUN_REQUESTS + 1


def test_short_token_lifetime_refreshed_once(graph, pki, tmp_path):
    # Tokens live 2 s; a 3 s delay on the search makes the move use an expired token.
    graph.configure(token_lifetime_s=2)
    faults = [{"type": "delay", "ms": 3000, "path": "/messages\\?"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "done", job
    assert job["attempts"] == 0
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    assert len(token_log(graph)) == 2
    logged = assert_audit_matches_log(graph, cb, job)
    assert [e["status"] for e in logged].count(401) == 1


@pytest.mark.parametrize("fault,expected", [
    ("mailbox_not_enabled", "MailboxNotEnabledForRESTAPI"),
    ("access_denied", "Mail.ReadWrite"),
])
def test_permanent_error_final(fault, expected, graph, pki, tmp_path):
    faults = [{"type": fault, "count": "always", "mailbox": FAULT_MAILBOX}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults)

    assert job["state"] == "final_error", job
    assert expected in job["error"], job
    assert message_places(graph.state())[FAULT_LABEL] == "inbox"
    logged = assert_audit_matches_log(graph, cb, job)
    assert len(logged) == 1


def test_unknown_mailbox_final(graph, pki, tmp_path):
    event = extra_event("nobody@contoso.example", "<x.1@invoices.example.net>", "Nobody")
    cb = make_clawback(tmp_path, graph, pki, MOVE_TO_JUNK)

    jobs, _ = run_until_settled(cb, write_feed(tmp_path, [event]))

    assert len(jobs) == 1
    job = jobs[0]
    assert job["state"] == "final_error", job
    assert "mailbox is unknown" in job["error"], job
    assert len(graph_log(graph, "nobody@contoso.example")) == 1


@pytest.mark.parametrize("status", [400, 404])
def test_permanent_delete_unavailable(status, graph, pki, tmp_path):
    faults = [{"type": "permanent_delete_unsupported", "status": status, "count": "always",
               "path": "/permanentDelete$"}]

    job, cb, _ = run_fault_case(graph, pki, tmp_path, faults, rules="[default]\naction = hard_delete\n")

    assert job["state"] == "done", job
    assert "not purged: permanentDelete is not available" in job["outcome"], job
    assert f"HTTP {status}" in job["outcome"], job
    assert message_places(graph.state())[FAULT_LABEL] == "recoverableitemsdeletions"
    logged = assert_audit_matches_log(graph, cb, job)
    # Search, the rejected permanentDelete, the move to Recoverable Items, folder name.
    assert [e["path"].rsplit("/", 1)[-1] for e in logged[1:3]] == ["permanentDelete", "move"]
    assert "/mailFolders/" in logged[3]["path"], logged
    assert len(logged) == 4


# ---------------------------------------------------------------------------------------------
# 3. No secret in any log, listing or store file

def key_material(pki):
    """The private key's PEM text and each of its base64 lines."""
    text = (pki / "app1.key").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("-----")]
    return [text.strip()] + lines


def assert_no_secrets(cb, graph, stderr, secrets):
    tokens = graph.control("GET", "tokens")["tokens"]
    assert tokens, "the simulator issued no token"
    listing = cb.run("jobs", "--json").stdout + cb.run("events", "--json").stdout
    store_bytes = b"".join(path.read_bytes() for path in cb.folder.glob("clawback.db*"))
    for secret in [*secrets, *tokens]:
        # The signature part alone would be found even in a cut-off token.
        parts = [secret] + ([secret.rsplit(".", 1)[-1]] if secret in tokens else [])
        for part in parts:
            assert part not in stderr
            assert part not in listing
            assert part.encode() not in store_bytes


def test_secret_absent_from_logs_and_store(graph, pki, tmp_path):
    graph.set_faults([{"type": "expired_token", "path": "/move$"}])
    cb = make_clawback(tmp_path, graph, pki, MOVE_TO_JUNK, log_level="debug")

    jobs, stderr = run_until_settled(cb, sample_feed_with_extras(tmp_path))

    assert "level=debug" in stderr
    # One token per replay process, plus the one fetched after the 401.
    assert [e["status"] for e in graph_log(graph)].count(401) == 1
    assert len(token_log(graph)) >= 2
    assert {job["state"] for job in jobs} == {"done", "not_found"}
    assert_no_secrets(cb, graph, stderr, [CLIENT_SECRET])


# ---------------------------------------------------------------------------------------------
# 4. Certificate sign-in

@pytest.mark.parametrize("credential", ["pem", "pkcs12"])
@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_certificate_sign_in(credential, alg, graph, pki, tmp_path):
    cb = make_clawback(tmp_path, graph, pki, MOVE_TO_JUNK, log_level="debug",
                       credential=credential, alg=alg)

    jobs, stderr = run_until_settled(cb, write_feed(tmp_path, [sample_line(7)]))

    assert [job["state"] for job in jobs] == ["done"], jobs
    assert message_places(graph.state())[FAULT_LABEL] == "junkemail"
    tokens = token_log(graph)
    assert [entry["credential"] for entry in tokens] == ["assertion"]
    assert tokens[0]["status"] == 200
    assert_no_secrets(cb, graph, stderr, key_material(pki) + [PKCS12_PASSWORD])


# ---------------------------------------------------------------------------------------------
# 5. HTTP/2

def test_requests_share_http2_connections(graph, pki, tmp_path):
    # With 100 ms per response, the five jobs' searches are in flight together.
    graph.configure(latency_ms=100)
    cb = make_clawback(tmp_path, graph, pki, MOVE_TO_JUNK)

    jobs, _ = run_until_settled(cb, SAMPLE_FEED)

    assert {job["state"] for job in jobs} == {"done"}
    requests = graph_log(graph)
    # At least search, move and folder name for each of the five jobs.
    assert len(requests) >= 15
    assert {entry["http_version"] for entry in requests} == {"2.0"}
    connections = {entry["connection_id"] for entry in requests}
    # The executor opens at most 16 connections per host (CB_EXEC_MAX_HOST_CONNECTIONS), and
    # five jobs need far fewer than 100 streams, so they share one or two.
    assert len(connections) <= 2, connections
    stats = graph.stats()
    assert stats["connections"]["http/1.1"] == 0
    assert stats["max_in_flight"] > len(connections), stats
