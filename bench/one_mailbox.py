#!/usr/bin/python3
"""One-mailbox benchmark: 500 PZD events for 500 different mails in one mailbox at once.

Microsoft Graph allows 4 requests in flight per (application, mailbox), so the least time is
mails x 2 requests (search, move) x latency / 4. The Graph simulator answers after 100 ms and
enforces the limit (a fifth concurrent request gets a 429). The events are stored with
`clawback replay --no-execute`, then `clawback replay` on an empty file runs the executor until
no job is left; the time runs from the simulator's first request (the token request) to the end
of the last move. Prints the time against that bound. A measurement, not a test.
"""

import json

import benchlib

MAILBOX = f"alice@{benchlib.DOMAIN}"


def options(parser):
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--latency-ms", type=int, default=100)


def main():
    args = benchlib.parse_args(__doc__.split("\n")[0], options)
    folder = benchlib.work_folder("one-mailbox", args.keep)
    message_ids = [f"<bench-{i:05d}@evil.example>" for i in range(args.mails)]
    sim = benchlib.start_graph_sim(folder, [(MAILBOX, message_ids)], args.latency_ms)
    try:
        measure(args, folder, sim, message_ids)
    finally:
        sim.stop()


def measure(args, folder, sim, message_ids):
    config, store = benchlib.write_settings(folder, benchlib.RULES_MOVE_TO_JUNK, sim)
    events = folder / "events.jsonl"
    events.write_text("".join(benchlib.pzd_event(i, MAILBOX, m) + "\n" for i, m in enumerate(message_ids)))
    _, rc, _ = benchlib.run_measured(
        [args.binary, "--config", str(config), "replay", "--quiet", "--no-execute", str(events)],
        folder / "replay-store.log")
    if rc != 0:
        raise RuntimeError(f"replay --no-execute exited with {rc}: see {folder}/replay-store.log")

    sim.control("POST", "reset-log")
    sim.control("POST", "reset-stats")
    wall, rc, usage = benchlib.run_measured(
        [args.binary, "--config", str(config), "replay", "--quiet", "/dev/null"],
        folder / "replay-execute.log")
    if rc != 0:
        raise RuntimeError(f"replay exited with {rc}: see {folder}/replay-execute.log")

    entries = sim.log()
    moves = [e for e in entries if benchlib.is_move(e) and str(e["status"]).startswith("2")]
    seconds = max(benchlib.sim_end(e) for e in moves) - min(benchlib.sim_time(e) for e in entries)
    statuses, kinds = benchlib.summarize_log(entries)
    graph_requests = sum(n for k, n in kinds.items() if k != "token")
    mailbox_stats = sim.stats()["mailboxes"].get(MAILBOX, {})
    latency = args.latency_ms / 1000.0
    bound = args.mails * 2 * latency / 4
    own_bound = graph_requests * latency / 4

    print("benchmark=one_mailbox " + benchlib.machine_line())
    print(f"mails={args.mails} latency_ms={args.latency_ms} simulator_limits=on")
    print(f"clawback: mails_moved={len(moves)} graph_requests={graph_requests} by_kind={json.dumps(kinds)} "
          f"statuses={json.dumps(statuses)} mailbox_max_in_flight={mailbox_stats.get('max_in_flight')} "
          f"mailbox_throttled={mailbox_stats.get('throttled')}")
    print(f"time: executor_s={seconds:.2f} (first simulator request to last move done) process_wall_s={wall:.2f}")
    print(f"bound_s={bound:.2f} = {args.mails} mails x 2 requests x {args.latency_ms} ms / 4 in flight")
    print(f"ratio time/bound={seconds / bound:.3f} (goal <= 1.3)")
    print(f"bound_for_clawback_requests_s={own_bound:.2f} ({graph_requests} requests x {args.latency_ms} ms / 4) "
          f"ratio={seconds / own_bound:.3f}")
    print(f"cpu: clawback_cpu_s={benchlib.cpu_seconds(usage):.2f} peak_rss_mb={usage.ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
