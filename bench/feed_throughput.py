#!/usr/bin/python3
"""Feed client benchmark: events per second `clawback run` takes from the feed into the store.

The feed simulator (tests/sim/feed, Python) generates 50,000 PZD events and sends them at full
speed as soon as the daemon connects. The daemon uses the log backend, so its executor also runs
the 50,000 jobs (recording what it would do) while the feed thread stores events. The time runs
from the simulator's first "sent" record to the moment the store holds every event (polled every
20 ms). Also prints how fast the simulator itself sent (its first to last "sent" record), because
a Python simulator may be the slower side, and the daemon's CPU time per event at that moment
(from /proc/PID/stat). A measurement, not a test.
"""

import os
import sqlite3
import time

import benchlib


def options(parser):
    parser.add_argument("--events", type=int, default=50000)


def stored_events(store):
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error:
        return 0


def process_cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    args = benchlib.parse_args(__doc__.split("\n")[0], options)
    folder = benchlib.work_folder("feed", args.keep)
    ca = benchlib.make_test_ca(folder / "ca")
    feed = benchlib.feed_sim(folder, ca, generate=args.events, rate=0)
    daemon = None
    try:
        config, store = benchlib.write_settings(folder, benchlib.RULES_LOG, None,
                                                benchlib.feed_settings(feed, ca, folder))
        daemon = benchlib.Daemon(args.binary, config, folder / "daemon.log")
        benchlib.wait_until(lambda: stored_events(store) >= args.events, f"{args.events} stored events",
                            interval=0.02)
        all_stored = time.time()
        cpu_at_stored = process_cpu_seconds(daemon.process.pid)
        peak_kb = daemon.peak_rss_kb()
        time.sleep(0.5)
        sent = [r["t"] for r in feed.records("sent")]
    finally:
        usage = daemon.stop() if daemon else None
        feed.stop()

    seconds = all_stored - sent[0]
    sim_seconds = sent[-1] - sent[0]
    print("benchmark=feed_throughput " + benchlib.machine_line())
    print(f"events={args.events} sent={len(sent)} backend=log")
    print(f"daemon: seconds={seconds:.2f} events_per_s={args.events / seconds:.0f} "
          f"(first event sent to all stored)")
    print(f"simulator: send_seconds={sim_seconds:.2f} events_per_s={len(sent) / max(sim_seconds, 1e-9):.0f} "
          f"(first to last sent record)")
    print(f"cpu: at_all_stored_s={cpu_at_stored:.2f} us_per_event={cpu_at_stored * 1e6 / args.events:.1f} "
          f"(feed thread and executor together) total_after_stop_s={benchlib.cpu_seconds(usage):.2f}")
    print(f"memory: peak_rss_mb={peak_kb / 1024:.1f}")


if __name__ == "__main__":
    main()
