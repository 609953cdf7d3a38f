#!/usr/bin/python3
"""Latency benchmark: time from a PZD event leaving the feed to the mail moved in the mailbox.

Runs `clawback run` with the feed simulator (tests/sim/feed) and the Graph simulator (100 ms per
response). The feed sends single events, one at a time, spaced apart so that each is finished
before the next arrives; all go to one mailbox. The first event is a warm-up (it fetches the
token and fills the folder caches) and is not counted. For each other event the latency runs
from the feed simulator's "sent" record to the end of the Graph simulator's move (its log start
plus duration). The overhead is the latency minus 2 x 100 ms (the search and the move), and,
as a second figure, minus the simulator's own durations of that event's requests. Prints the
median and p90. A measurement, not a test.
"""

import json
import statistics
import time

import benchlib

MAILBOX = f"bob@{benchlib.DOMAIN}"


def options(parser):
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--interval-s", type=float, default=0.5, help="seconds between two events")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    args = benchlib.parse_args(__doc__.split("\n")[0], options)
    folder = benchlib.work_folder("latency", args.keep)
    count = args.samples + 1
    message_ids = [f"<latency-{i:04d}@evil.example>" for i in range(count)]
    graph = benchlib.start_graph_sim(folder, [(MAILBOX, message_ids)], args.latency_ms)
    events = folder / "feed-events.jsonl"
    events.write_text("".join(benchlib.pzd_event(i, MAILBOX, m) + "\n" for i, m in enumerate(message_ids)))
    steps = [["sleep", 2]]
    for _ in range(count):
        steps += [["send", 1], ["sleep", args.interval_s]]
    feed = benchlib.feed_sim(folder, folder / "ca", events=events,
                             scenario={"default": {"steps": steps + [["hold"]]}})
    daemon = None
    try:
        config, _ = benchlib.write_settings(folder, benchlib.RULES_MOVE_TO_JUNK, graph,
                                            benchlib.feed_settings(feed, folder / "ca", folder))
        daemon = benchlib.Daemon(args.binary, config, folder / "daemon.log")
        benchlib.wait_until(lambda: len(moves_of(graph.log())) >= count, f"{count} moves",
                            timeout=60 + count * (args.interval_s + 2), interval=0.2)
        time.sleep(0.2)
        report(args, feed.records("sent"), graph.log())
    finally:
        if daemon:
            daemon.stop()
        feed.stop()
        graph.stop()


def moves_of(entries):
    return [e for e in entries if benchlib.is_move(e) and str(e["status"]).startswith("2")]


def report(args, sent, entries):
    sent_times = sorted(r["t"] for r in sent)
    latency = args.latency_ms / 1000.0
    totals, overheads, client_overheads, request_counts = [], [], [], []
    for i, t_sent in enumerate(sent_times[1:], start=1):
        t_next = sent_times[i + 1] if i + 1 < len(sent_times) else float("inf")
        window = [e for e in entries if t_sent - 0.002 <= benchlib.sim_time(e) < t_next]
        move = next(e for e in window if benchlib.is_move(e))
        done = benchlib.sim_end(move)
        job = [e for e in window if benchlib.sim_time(e) <= benchlib.sim_time(move)]
        server_time = sum((e.get("duration_ms") or 0) / 1000.0 for e in job)
        totals.append(done - t_sent)
        overheads.append(done - t_sent - 2 * latency)
        client_overheads.append(done - t_sent - server_time)
        request_counts.append(len(job))

    ms = lambda x: f"{x * 1000:.1f}"  # noqa: E731
    statuses, kinds = benchlib.summarize_log(entries)
    print("benchmark=latency " + benchlib.machine_line())
    print(f"samples={len(totals)} (after 1 warm-up event) latency_ms={args.latency_ms} "
          f"interval_s={args.interval_s} requests_per_event={sorted(set(request_counts))} "
          f"graph_requests={json.dumps(kinds)} statuses={json.dumps(statuses)}")
    print(f"event_to_moved_ms: median={ms(statistics.median(totals))} p90={ms(percentile(totals, 0.9))} "
          f"min={ms(min(totals))} max={ms(max(totals))}")
    print(f"overhead_ms (minus 2 x {args.latency_ms} ms): median={ms(statistics.median(overheads))} "
          f"p90={ms(percentile(overheads, 0.9))} (goal: median < 5)")
    print(f"overhead_ms (minus the simulator's own request durations): "
          f"median={ms(statistics.median(client_overheads))} p90={ms(percentile(client_overheads, 0.9))}")


if __name__ == "__main__":
    main()
