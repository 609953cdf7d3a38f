#!/usr/bin/python3
"""Campaign benchmark: 10,000 PZD events for 10,000 mailboxes arrive at once.

Steps, all on 127.0.0.1 in a temporary folder:
1. Start the Graph simulator with 10,000 mailboxes (one copy of the campaign mail in each inbox),
   100 ms latency per response and Microsoft's limits enforced.
2. Measure the simulator alone with a lean HTTP/2 client doing the same 20,000 requests
   (bench/graph_sim_capacity.js, or the compiled bench/graph_sim_load.c with --load-client).
3. Measure a sequential client (one HTTPS connection, one request at a time) on a sample of
   mailboxes and extrapolate its time to all mailboxes.
4. Store the events with `clawback replay --no-execute`, then run `clawback replay` on an empty
   file, which runs the executor until no job is left, and time it from the simulator's log: from
   the first request (the token request the executor sends before its first job) to the end of
   the last move.

Prints the wall time against bound = max(0.2 s, requests / 130,000 per 10 s, requests /
simulator capacity), the speed-up over the sequential client, clawback's peak RSS and its CPU
time per mail. A measurement, not a test: nothing here passes or fails on a time.
"""

import json
import re
import sqlite3
import subprocess
import time

import benchlib


def options(parser):
    parser.add_argument("--mailboxes", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--sequential-sample", type=int, default=100,
                        help="mailboxes the sequential client remediates (its time is extrapolated)")
    parser.add_argument("--load-client", help="compiled bench/graph_sim_load.c to measure the "
                        "simulator with (default: node bench/graph_sim_capacity.js)")
    parser.add_argument("--global-concurrency", type=int,
                        help="[executor] global_concurrency (default: clawback's default)")


def simulator_capacity(args, sim):
    """Requests per second the simulator serves to a lean client for the same campaign."""
    if args.load_client:
        command = [args.load_client, "--port", str(sim.port), "--ca", sim.ca,
                   "--mailboxes", str(args.mailboxes), "--tenant", benchlib.TENANT,
                   "--client-id", benchlib.CLIENT_ID, "--client-secret", benchlib.CLIENT_SECRET]
    else:
        command = ["node", str(benchlib.SOURCE_DIR / "bench" / "graph_sim_capacity.js"),
                   "--mailboxes", str(args.mailboxes), "--latency-ms", str(args.latency_ms)]
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            timeout=benchlib.PHASE_TIMEOUT_S).stdout
    match = re.search(r"requests=(\d+) seconds=([\d.]+) requests_per_s=(\d+)", output)
    if not match:
        raise RuntimeError(f"no requests_per_s in the load client's output:\n{output}")
    return int(match.group(1)), float(match.group(2)), int(match.group(3)), " ".join(command[:2])


def sequential_sample(sim, count):
    """Seconds per mailbox of a one-connection client doing clawback's requests one at a time."""
    client = benchlib.SequentialClient(sim)
    started = time.monotonic()
    moved = 0
    for i in range(count):
        moved += client.remediate(f"user{i}@{benchlib.DOMAIN}", benchlib.CAMPAIGN_MESSAGE_ID, True)
    seconds = time.monotonic() - started
    if client.reconnects:
        print(f"sequential client: the server closed its connection {client.reconnects} times")
    if moved != count:
        raise RuntimeError(f"sequential client moved {moved} of {count} mails")
    return seconds / count


def job_states(store):
    with sqlite3.connect(store) as db:
        return dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())


def main():
    args = benchlib.parse_args(__doc__.split("\n")[0], options)
    folder = benchlib.work_folder("campaign", args.keep)
    addresses = [f"user{i}@{benchlib.DOMAIN}" for i in range(args.mailboxes)]
    mailboxes = [(a, [benchlib.CAMPAIGN_MESSAGE_ID]) for a in addresses]
    sim = benchlib.start_graph_sim(folder, mailboxes, args.latency_ms)
    try:
        measure(args, folder, sim, addresses, mailboxes)
    finally:
        sim.stop()


def measure(args, folder, sim, addresses, mailboxes):
    base_requests, load_seconds, capacity, load_tool = simulator_capacity(args, sim)
    sim.load_fixture(benchlib.fixture(mailboxes))
    per_mailbox = sequential_sample(sim, args.sequential_sample)
    sim.load_fixture(benchlib.fixture(mailboxes))

    extra = (f"[executor]\nglobal_concurrency = {args.global_concurrency}\n"
             if args.global_concurrency else "")
    config, store = benchlib.write_settings(folder, benchlib.RULES_MOVE_TO_JUNK, sim, extra)
    events = folder / "events.jsonl"
    events.write_text("".join(benchlib.pzd_event(i, a, benchlib.CAMPAIGN_MESSAGE_ID) + "\n"
                              for i, a in enumerate(addresses)))
    store_seconds, rc, _ = benchlib.run_measured(
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
    report(args, sim, store, wall, usage, store_seconds, base_requests, load_seconds, capacity,
           load_tool, per_mailbox)


def report(args, sim, store, wall, usage, store_seconds, base_requests, load_seconds, capacity,
           load_tool, per_mailbox):
    entries = sim.log()
    (store.parent / "graph-sim-log.json").write_text(json.dumps(entries))
    moves = [e for e in entries if benchlib.is_move(e) and str(e["status"]).startswith("2")]
    first = min(benchlib.sim_time(e) for e in entries)
    last = max(benchlib.sim_end(e) for e in moves)
    executor_seconds = last - first
    statuses, kinds = benchlib.summarize_log(entries)
    graph_requests = sum(n for k, n in kinds.items() if k != "token")
    stats = sim.stats()

    campaign_requests = 2 * args.mailboxes
    bound = max(2 * args.latency_ms / 1000.0, campaign_requests / 13000.0,
                campaign_requests / capacity)
    own_bound = max(graph_requests / args.mailboxes * args.latency_ms / 1000.0,
                    graph_requests / 13000.0, graph_requests / capacity)
    sequential_total = per_mailbox * args.mailboxes
    mails = len(moves)

    print("benchmark=campaign " + benchlib.machine_line())
    print(f"mailboxes={args.mailboxes} latency_ms={args.latency_ms} simulator_limits=on "
          f"global_concurrency={args.global_concurrency or 'default'}")
    print(f"simulator_capacity: tool='{load_tool}' requests={base_requests} seconds={load_seconds:.2f} "
          f"requests_per_s={capacity}")
    print(f"store_events: seconds={store_seconds:.2f} events_per_s={args.mailboxes / store_seconds:.0f}")
    print(f"clawback: jobs={json.dumps(job_states(store))} mails_moved={mails} "
          f"graph_requests={graph_requests} by_kind={json.dumps(kinds)} statuses={json.dumps(statuses)} "
          f"throttled={json.dumps(stats.get('throttled'))} simulator_max_in_flight={stats.get('max_in_flight')} "
          f"acted_more_than_once={len(stats.get('messages_acted_on_more_than_once', []))}")
    print(f"time: executor_s={executor_seconds:.2f} (first simulator request to last move done) "
          f"process_wall_s={wall:.2f}")
    print(f"bound_s={bound:.2f} = max(0.2, {campaign_requests} / 13000 per s, "
          f"{campaign_requests} / {capacity} per s)")
    print(f"ratio wall/bound={executor_seconds / bound:.2f} (goal <= 1.3)")
    print(f"bound_for_clawback_requests_s={own_bound:.2f} ({graph_requests} requests, "
          f"{graph_requests / args.mailboxes:.1f} round trips per mail) "
          f"ratio={executor_seconds / own_bound:.2f}")
    print(f"sequential: sample={args.sequential_sample} mailboxes, {per_mailbox * 1000:.1f} ms per mailbox, "
          f"extrapolated_s={sequential_total:.0f} (sample time x {args.mailboxes} / {args.sequential_sample})")
    print(f"ratio sequential/clawback={sequential_total / executor_seconds:.0f}x (goal >= 100x)")
    print(f"memory: peak_rss_mb={usage.ru_maxrss / 1024:.1f} (goal < 64)")
    cpu = benchlib.cpu_seconds(usage)
    print(f"cpu: clawback_cpu_s={cpu:.2f} (user {usage.ru_utime:.2f}, system {usage.ru_stime:.2f}) "
          f"cpu_ms_per_mail={cpu * 1000 / max(mails, 1):.3f}")


if __name__ == "__main__":
    main()
