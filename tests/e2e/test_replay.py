"""End-to-end: `clawback replay` takes the sample feed through parse, rules and store."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from clawback_env import BINARY, SAMPLE_FEED, Clawback

RULES = """\
[rule "virus-to-junk"]
threat = VIRUS
action = move
folder = junkemail

[rule "phishing-soft-delete"]
threat = URL
sender_domain = contoso-helpdesk.example
action = soft_delete

[default]
action = log
"""


@pytest.fixture
def clawback(tmp_path):
    return Clawback(tmp_path, RULES)


def test_sample_feed_stores_every_event(clawback):
    clawback.run("replay", str(SAMPLE_FEED))
    events = clawback.json_lines("events")

    assert len(events) == 10
    statuses = [event["status"] for event in events]
    assert statuses == [
        "accepted", "ignored", "accepted", "ignored", "accepted",
        "ignored", "accepted", "ignored", "accepted", "duplicate",
    ]
    assert [event["type"] for event in events if event["status"] == "ignored"] == [
        "MTA", "MultiScan", "Sandboxing", "CxO",
    ]
    assert events[9]["duplicate_of"] == events[0]["event"]
    with open(SAMPLE_FEED, encoding="utf-8") as sample:
        lines = sample.read().splitlines()
    assert [event["raw"] for event in events] == lines


def test_sample_feed_jobs_record_decision(clawback):
    clawback.run("replay", str(SAMPLE_FEED))
    jobs = clawback.json_lines("jobs")

    assert len(jobs) == 5
    by_line = {job["message_id"] + " " + job["mailbox"]: job for job in jobs}
    first = by_line["<20261130071402.4F2A1@mx1.invoices.example.net> anna.schmidt@contoso.example"]
    assert first["rule"] == "virus-to-junk"
    assert first["action"] == "move"
    assert first["folder"] == "junkemail"
    phishing = by_line["<CAF+x9=Q/z7@mail.gmail.example> jonas.weber@contoso.example"]
    assert phishing["rule"] == "phishing-soft-delete"
    assert phishing["action"] == "soft_delete"
    other_phishing = by_line["<O'Brien.77#x&y%z@mailer.example.co> buchhaltung@contoso.example"]
    assert other_phishing["rule"] == "(default)"
    assert other_phishing["action"] == "log"
    campaign = by_line["<20261130071402.4F2A1@mx1.invoices.example.net> lukas.mueller@contoso.example"]
    assert campaign["rule"] == "virus-to-junk"
    for job in jobs:
        assert job["state"] == "done", job
        assert job["outcome"], job


def test_sample_feed_replayed_twice_adds_no_job(clawback):
    clawback.run("replay", str(SAMPLE_FEED))
    clawback.run("replay", str(SAMPLE_FEED))

    events = clawback.json_lines("events")
    assert len(events) == 20
    assert sum(event["status"] == "accepted" for event in events) == 5
    assert sum(event["status"] == "duplicate" for event in events) == 7
    assert len(clawback.json_lines("jobs")) == 5


def test_replay_keeps_malformed_lines(clawback):
    bad = [
        "not json at all",
        "[1, 2, 3]",
        '{"type":"PZD","mimeId":"<a@b>","metaData":{"threatType":"URL"}}',
        '{"type":"PZD","recipient":"no-at-sign","mimeId":"<a@b>","metaData":{"threatType":"URL"}}',
        "[" * 100 + "]" * 100,
    ]
    clawback.run("replay", "-", input_text="\n".join(bad) + "\n")
    events = clawback.json_lines("events")

    assert [event["status"] for event in events] == ["rejected"] * len(bad)
    assert [event["raw"] for event in events] == bad
    for event in events:
        assert event["reject_reason"]
    assert clawback.json_lines("jobs") == []


def test_replay_rejects_overlong_line(clawback):
    line = '{"type":"PZD","padding":"' + "x" * 100_000 + '"}'
    clawback.run("replay", "-", input_text=line + "\n")
    events = clawback.json_lines("events")

    assert len(events) == 1
    assert events[0]["status"] == "rejected"
    assert events[0]["reject_reason"] == "too_large"


def write_campaign(path, count):
    """Writes count distinct PZD events (one campaign mail to count recipients)."""
    template = json.loads(SAMPLE_FEED.read_text().splitlines()[0])
    with open(path, "w", encoding="utf-8") as out:
        for number in range(count):
            event = dict(template)
            event["recipient"] = f"user{number:05d}@contoso.example"
            out.write(json.dumps(event) + "\n")


def count_rows(store, table):
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_replay_killed_midway_loses_nothing(clawback, tmp_path):
    total = 10_000
    feed = tmp_path / "campaign.jsonl"
    write_campaign(feed, total)
    command = [BINARY, "--config", str(clawback.config), "replay", "--no-execute", "--quiet", str(feed)]
    rng = random.Random(7)

    kills = 0
    for _ in range(3):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        target = count_rows(clawback.store, "events") + rng.randint(500, 3000)
        while process.poll() is None and count_rows(clawback.store, "events") < target:
            time.sleep(0.002)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
        else:
            assert process.returncode == 0, process.stderr.read()
    assert kills >= 1, "replay always finished before it could be killed"

    clawback.run("replay", "--no-execute", "--quiet", str(feed), timeout=300)
    with sqlite3.connect(clawback.store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    events = clawback.json_lines("events", "--state", "accepted")
    recipients = [event["recipient"] for event in events]
    assert len(recipients) == total
    assert len(set(recipients)) == total
    jobs = clawback.json_lines("jobs")
    assert len(jobs) == total
    assert len({job["event"] for job in jobs}) == total


def test_listing_filters(clawback):
    clawback.run("replay", str(SAMPLE_FEED))

    lukas = clawback.json_lines("jobs", "--recipient", "LUKAS.Mueller@contoso.EXAMPLE")
    assert [job["mailbox"] for job in lukas] == ["lukas.mueller@contoso.example"]
    by_id = clawback.json_lines("events", "--message-id", "<CAF+x9=Q/z7@mail.gmail.example>")
    assert [event["type"] for event in by_id] == ["PZD"]
    assert len(clawback.json_lines("events", "--state", "ignored")) == 4
    assert len(clawback.json_lines("jobs", "--state", "done", "--limit", "2")) == 2
    assert len(clawback.json_lines("events", "--since", "1h")) == 10
    assert clawback.json_lines("events", "--until", "2000-01-01") == []
    event_one = clawback.json_lines("jobs", "--event", "1")
    assert [job["event"] for job in event_one] == [1]


def test_listing_rejects_bad_filters(clawback):
    for args in (["jobs", "--state", "finished"], ["events", "--since", "yesterday"],
                 ["jobs", "--limit", "-3"], ["events", "--state", "done"]):
        result = clawback.run(*args, check=False)
        assert result.returncode == 2, args
        assert "invalid" in result.stderr, result.stderr


def test_rules_test_explains_decision(clawback, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(SAMPLE_FEED.read_text().splitlines()[2])
    result = clawback.run("rules", "test", str(event))

    assert "rule 'virus-to-junk'" in result.stdout
    assert "decision: rule=phishing-soft-delete action=soft_delete" in result.stdout


def test_rules_check_names_rule_and_field(tmp_path):
    broken = Clawback(tmp_path, '[rule "bad-regex"]\nurl = regex:(unclosed\naction = log\n')
    result = broken.run("rules", "check", check=False)

    assert result.returncode == 3
    assert "bad-regex" in result.stderr
    assert "url" in result.stderr


def test_replay_reports_overlong_line(clawback):
    line = '{"type":"PZD","padding":"' + "x" * 70_000 + '"}'
    result = clawback.run("replay", "--json", "-", input_text=line + "\n" + SAMPLE_FEED.read_text())
    rows = [json.loads(text) for text in result.stdout.splitlines()]

    assert rows[0]["line"] == 1
    assert rows[0]["status"] == "rejected"
    assert rows[-1]["received"] == 11
    events = clawback.json_lines("events", "--state", "rejected")
    assert len(events) == 1
    assert events[0]["reject_reason"] == "too_large"


def test_replay_while_paused_leaves_jobs_queued(clawback):
    clawback.run("pause")
    result = clawback.run("replay", str(SAMPLE_FEED))

    assert "paused" in result.stderr
    assert {job["state"] for job in clawback.json_lines("jobs")} == {"queued"}
    clawback.run("resume")
    clawback.run("replay", "-", input_text="")
    assert {job["state"] for job in clawback.json_lines("jobs")} == {"done"}


def test_replay_rejects_directory(clawback, tmp_path):
    result = clawback.run("replay", str(tmp_path), check=False)

    assert result.returncode == 1
    assert "reading the input failed" in result.stderr


def test_time_filter_edges(clawback):
    clawback.run("replay", str(SAMPLE_FEED))

    assert clawback.json_lines("events", "--until", "1970-01-01") == []
    assert len(clawback.json_lines("events", "--since", "1970-01-01")) == 10
    result = clawback.run("events", "--since", "2026-02-31", check=False)
    assert result.returncode == 2
