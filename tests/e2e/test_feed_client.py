"""End-to-end tests of the feed client (src/feed) against the feed simulator.

The client runs inside feed_client_probe, which prints each message when its
batch is committed. The simulator records every event it wrote, so each test
checks that every event sent arrived exactly once, and how many connections
the client opened. Counts of attempts over a period stand in for timing.
"""
import collections
import json
import pathlib
import signal
import sys
import time
import types

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "sim" / "feed"))
import harness  # noqa: E402

SAMPLE = harness.SOURCE_DIR / "tests" / "data" / "feed-sample.jsonl"
SAMPLE_EVENTS = [line for line in SAMPLE.read_text().splitlines() if line.strip()]
# Short timers so the tests see keepalive and reconnects quickly.
FAST = ["--ping-ms", "300", "--pong-ms", "700", "--backoff-first-ms", "200", "--backoff-max-ms", "1000"]


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    return harness.build_probe(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    return harness.make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def cleanup():
    items = []
    yield items
    for item in reversed(items):
        item.stop()


def start_sim(tmp_path, ca, cleanup, **kwargs):
    kwargs.setdefault("events", SAMPLE)
    sim = harness.FeedSim(tmp_path, ca, **kwargs)
    cleanup.append(sim)
    return sim


def start_probe(probe_binary, tmp_path, sim, ca, cleanup, **kwargs):
    probe = harness.Probe(probe_binary, tmp_path, sim, ca, **kwargs)
    cleanup.append(probe)
    return probe


def sent_texts(sim):
    return [r["data"] for r in sim.records("sent")]


def assert_exactly_once(probe, sim):
    """Every event the simulator wrote was delivered as often as it was sent, in order."""
    sent = sent_texts(sim)
    received = [m for m in probe.messages() if m in set(sent)]
    assert collections.Counter(received) == collections.Counter(sent)
    assert received == sent


def wait_all_sample(probe):
    probe.wait_for(lambda: len(probe.messages()) >= len(SAMPLE_EVENTS), "all sample events")


def test_direct_sample_exactly_once(probe_binary, tmp_path, ca, cleanup):
    sim = start_sim(tmp_path, ca, cleanup)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup)
    wait_all_sample(probe)
    assert probe.stop() == 0

    assert probe.messages() == SAMPLE_EVENTS
    assert_exactly_once(probe, sim)
    assert [r["status"] for r in sim.records("handshake")] == [101]
    assert sim.records("handshake")[0]["path"] == harness.FEED_PATH + "?channel=clawback-test"
    assert probe.lines("stopped") != []
    closed = sim.records("closed")
    assert len(closed) == 1
    assert closed[0]["code"] == 1001
    flushes = probe.lines("flush")
    assert sum(f["count"] for f in flushes) == len(SAMPLE_EVENTS)


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_proxy_sample_exactly_once(probe_binary, tmp_path, ca, cleanup, auth):
    proxy = harness.Proxy(tmp_path, auth)
    cleanup.append(proxy)
    sim = start_sim(tmp_path, ca, cleanup)
    password_file = tmp_path / "proxy-password"
    password_file.write_text(proxy.password + "\n")
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup,
                        extra=["--proxy", proxy.url, "--proxy-user", proxy.user,
                               "--proxy-password-file", str(password_file), "--proxy-auth", auth])
    wait_all_sample(probe)
    probe.stop()

    assert probe.messages() == SAMPLE_EVENTS
    assert_exactly_once(probe, sim)
    tunnels = proxy.records("connect")
    assert len(tunnels) == 1
    assert tunnels[0]["target"] == "127.0.0.1:%d" % sim.process.port
    if auth == "ntlm":
        assert proxy.records("407") != []  # the NTLM challenge came in a 407


def test_proxy_wrong_password_reported(probe_binary, tmp_path, ca, cleanup):
    proxy = harness.Proxy(tmp_path, "basic")
    cleanup.append(proxy)
    sim = start_sim(tmp_path, ca, cleanup)
    password_file = tmp_path / "proxy-password"
    password_file.write_text("wrong\n")
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup,
                        extra=["--proxy", proxy.url, "--proxy-user", proxy.user,
                               "--proxy-password-file", str(password_file), "--proxy-auth", "basic", *FAST])
    probe.wait_for(lambda: "407" in probe.stderr(), "a logged proxy rejection")
    probe.stop()

    assert proxy.records("connect") == []
    assert sim.records("handshake") == []
    assert "check the proxy user, password and auth type" in probe.stderr()
    assert "wrong" not in probe.stderr()


def test_proxy_from_environment(probe_binary, tmp_path, ca, cleanup):
    proxy = harness.Proxy(tmp_path, "basic")
    cleanup.append(proxy)
    sim = start_sim(tmp_path, ca, cleanup)
    proxy_url = "http://%s:%s@127.0.0.1:%d" % (proxy.user, proxy.password, proxy.process.port)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, env={"https_proxy": proxy_url})
    wait_all_sample(probe)
    probe.stop()

    assert_exactly_once(probe, sim)
    assert len(proxy.records("connect")) == 1


def test_no_proxy_bypasses_environment_proxy(probe_binary, tmp_path, ca, cleanup):
    proxy = harness.Proxy(tmp_path, "basic")
    cleanup.append(proxy)
    sim = start_sim(tmp_path, ca, cleanup)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup,
                        env={"https_proxy": proxy.url, "no_proxy": "127.0.0.1"})
    wait_all_sample(probe)
    probe.stop()

    assert_exactly_once(probe, sim)
    assert proxy.records() == []


def test_401_retries_slowly_and_reports(probe_binary, tmp_path, ca, cleanup):
    sim = start_sim(tmp_path, ca, cleanup)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, token="wrong-token", extra=FAST)
    probe.wait_for(lambda: any(s["auth_failed"] for s in probe.lines("status")), "an auth failure status")
    # With the back-off schedule (200 ms first) this period would see several attempts;
    # the auth retry interval (5 minutes) allows none.
    time.sleep(3)
    statuses = probe.lines("status")
    probe.stop()

    assert [r["status"] for r in sim.records("handshake")] == [401]
    failed = [s for s in statuses if s["state"] == "auth_failed"]
    assert failed[-1]["http_status"] == 401
    assert failed[-1]["attempts"] == 1
    assert "feed authentication failed" in probe.stderr()
    assert "http_status=401" in probe.stderr()
    assert "wrong-token" not in probe.stderr()
    assert probe.messages() == []


def test_token_fixed_then_wake_connects(probe_binary, tmp_path, ca, cleanup):
    sim = start_sim(tmp_path, ca, cleanup)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, token="wrong-token", extra=FAST)
    probe.wait_for(lambda: any(s["auth_failed"] for s in probe.lines("status")), "an auth failure status")
    probe.token_file.write_text(sim.token + "\n")
    probe.proc.send_signal(signal.SIGUSR1)
    wait_all_sample(probe)
    probe.stop()

    assert [r["status"] for r in sim.records("handshake")] == [401, 101]
    assert_exactly_once(probe, sim)


def test_bad_channel_rejected_400(probe_binary, tmp_path, ca, cleanup):
    sim = start_sim(tmp_path, ca, cleanup, channel="other-channel")
    other = types.SimpleNamespace(url=sim.url, channel="clawback-test", token=sim.token)
    probe = start_probe(probe_binary, tmp_path, other, ca, cleanup, extra=FAST)
    probe.wait_for(lambda: any(s["http_status"] == 400 for s in probe.lines("status")), "a 400 status")
    probe.stop()

    assert [r["status"] for r in sim.records("handshake")] == [400]
    assert probe.messages() == []


def test_retry_attempts_bounded(probe_binary, tmp_path, ca, cleanup):
    sim = start_sim(tmp_path, ca, cleanup, scenario={"default": {"refuse": 503}})
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup,
                        extra=["--backoff-first-ms", "1000", "--backoff-max-ms", "60000"])
    probe.wait_for(lambda: len(sim.records("handshake")) >= 1, "the first attempt")
    time.sleep(3)
    probe.stop()

    # Delays are at least 500, 1000, 2000 ms: in about 3 s no more than 4 attempts fit.
    attempts = len(sim.records("handshake"))
    assert attempts >= 1
    assert attempts <= 4
    assert all(s["auth_failed"] == 0 for s in probe.lines("status"))


def test_drop_mid_stream_reconnects(probe_binary, tmp_path, ca, cleanup):
    scenario = {"connections": [{"steps": [["send", 3], ["drop"]]}]}
    sim = start_sim(tmp_path, ca, cleanup, scenario=scenario)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, extra=FAST)
    wait_all_sample(probe)
    probe.stop()

    assert [r["status"] for r in sim.records("handshake")] == [101, 101]
    assert probe.messages() == SAMPLE_EVENTS
    assert_exactly_once(probe, sim)


@pytest.mark.parametrize("fault", ["no_pong", "stall"])
def test_dead_connection_replaced(probe_binary, tmp_path, ca, cleanup, fault):
    scenario = {"connections": [{"steps": [["send", 4], [fault], ["hold"]]}]}
    sim = start_sim(tmp_path, ca, cleanup, scenario=scenario)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, extra=FAST)
    wait_all_sample(probe)
    probe.stop()

    assert len(sim.records("handshake")) == 2
    assert_exactly_once(probe, sim)
    assert "sent no PONG within 700 ms" in probe.stderr()
    if fault == "no_pong":
        assert [r for r in sim.records("ping") if r["conn"] == 0] != []


def test_fragmented_messages_reassembled(probe_binary, tmp_path, ca, cleanup):
    steps = [["fragmented", 2], ["fragmented", 7], ["fragmented", 300], ["send", "all"], ["hold"]]
    sim = start_sim(tmp_path, ca, cleanup, scenario={"default": {"steps": steps}})
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup)
    wait_all_sample(probe)
    probe.stop()

    assert probe.messages() == SAMPLE_EVENTS
    assert probe.lines("rejected") == []
    assert len(sim.records("handshake")) == 1


def test_bad_messages_rejected_connection_kept(probe_binary, tmp_path, ca, cleanup):
    steps = [["send", 2], ["big", 10 * 1024 * 1024], ["send", 1], ["binary"], ["bad_utf8"],
             ["non_json", "this is not json"], ["send", "all"], ["hold"]]
    sim = start_sim(tmp_path, ca, cleanup, scenario={"default": {"steps": steps}})
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup)
    wait_all_sample(probe)
    probe.stop()

    assert len(sim.records("handshake")) == 1  # nothing above needed a reconnect
    assert_exactly_once(probe, sim)
    specials = {r["what"]: r for r in sim.records("special")}
    rejected = probe.lines("rejected")
    assert len(rejected) == 3

    big, binary, bad_utf8 = rejected
    assert big["size"] == specials["big"]["size"]
    assert "exceeds the limit of 1048576 bytes" in big["reason"]
    assert big["kept"] == 64 * 1024
    assert big["hex"][:len(specials["big"]["hex"])] == specials["big"]["hex"]
    assert "binary" in binary["reason"]
    assert binary["hex"] == specials["binary"]["hex"]
    assert "not valid UTF-8" in bad_utf8["reason"]
    assert bad_utf8["hex"] == specials["bad_utf8"]["hex"]
    assert "this is not json" in probe.messages()  # JSON parsing is the store's job, not the feed's


def test_fragment_then_drop_keeps_partial(probe_binary, tmp_path, ca, cleanup):
    scenario = {"connections": [{"steps": [["send", 2], ["fragment_then_drop"]]}]}
    sim = start_sim(tmp_path, ca, cleanup, scenario=scenario)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, extra=FAST)
    probe.wait_for(lambda: len(probe.messages()) >= len(SAMPLE_EVENTS) - 1, "the other events")
    probe.stop()

    incomplete = [r for r in sim.records("special") if r["what"] == "incomplete"][0]
    rejected = probe.lines("rejected")
    assert len(rejected) == 1
    assert "incomplete" in rejected[0]["reason"]
    assert rejected[0]["hex"] == incomplete["hex"]
    assert_exactly_once(probe, sim)
    assert len(sim.records("handshake")) == 2


def test_close_with_reason_logged(probe_binary, tmp_path, ca, cleanup):
    scenario = {"connections": [{"steps": [["send", 5], ["close", 1012, "service restart"]]}]}
    sim = start_sim(tmp_path, ca, cleanup, scenario=scenario)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup, extra=FAST)
    wait_all_sample(probe)
    probe.stop()

    assert_exactly_once(probe, sim)
    assert len(sim.records("handshake")) == 2
    assert 'close_code=1012 close_reason="service restart"' in probe.stderr()
    assert sim.records("closed")[0]["code"] == 1012


def test_sigkill_loses_only_recent_events(probe_binary, tmp_path, ca, cleanup):
    sim = start_sim(tmp_path, ca, cleanup, events=None, generate=20000, rate=1000)
    probe = start_probe(probe_binary, tmp_path, sim, ca, cleanup)
    probe.wait_for(lambda: len(probe.messages()) >= 1500, "1500 committed events")
    killed_at = time.time()
    probe.stop(signal.SIGKILL)

    committed = set(probe.messages())
    old_enough = [r for r in sim.records("sent") if r["t"] < killed_at - 1.0]
    assert len(old_enough) >= 500
    missing = [r["mimeId"] for r in old_enough if r["data"] not in committed]
    assert missing == []
    counts = collections.Counter(probe.messages())
    assert max(counts.values()) == 1
    assert all(json.loads(m)["mimeId"].startswith("<gen-") for m in committed)
