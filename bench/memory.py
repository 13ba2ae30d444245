"""What unread streams cost the server's memory, with its default bounds.

    python -m bench.memory [--streams 10] [--events 200000]

Starts ``agentflow api`` (default settings) serving ``bench.graphs:emitter``, opens
``--streams`` streams of ``--events`` events each whose clients read the headers and then
nothing, waits until every run has ended, and prints the server's resident memory: idle, and
its peak (VmHWM) over the run, beside the idle bare FastAPI reference. Without bounds each
event would be held twice (the client's buffer and the run's log for joiners).
"""

from __future__ import annotations

import argparse
import time

import httpx

from bench import procfs, run


def unread_streams_peak_mb(streams: int, events: int) -> tuple[float, float]:
    """(idle, peak) resident MB of a server holding ``streams`` unread streams to their end."""
    server = run.agentflow("agentflow", 8611, "emitter", env={"BENCH_EVENTS": str(events)})
    with run.running(server) as process, httpx.Client(timeout=600) as client:
        url = f"http://127.0.0.1:{server.port}"
        idle = procfs.rss_mb(process.pid)
        body = {"messages": ["hi"]}
        opened = [
            client.stream("POST", f"{url}/v1/graph/stream", json=body) for _ in range(streams)
        ]
        for stream in opened:
            stream.__enter__()  # headers read, body never
        deadline = time.monotonic() + 600
        while _runs_in_flight(client, url) > 0 and time.monotonic() < deadline:
            time.sleep(1)
        peak = procfs.peak_rss_mb(process.pid)
        for stream in opened:
            stream.__exit__(None, None, None)
    return idle, peak


def _runs_in_flight(client: httpx.Client, url: str) -> float:
    for line in client.get(f"{url}/metrics").text.splitlines():
        if line.startswith("agentflow_runs_in_flight "):
            return float(line.split()[1])
    raise LookupError("no agentflow_runs_in_flight in /metrics")


def bare_idle_mb() -> float:
    with run.running(run.bare(8612, 0)) as process:
        return procfs.rss_mb(process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--events", type=int, default=200_000)
    options = parser.parse_args()
    idle, peak = unread_streams_peak_mb(options.streams, options.events)
    print(f"{options.streams} unread streams of {options.events:,} events, default settings")
    print(f"bare FastAPI, idle:     {bare_idle_mb():6.0f} MB")
    print(f"agentflow, idle:        {idle:6.0f} MB")
    print(f"agentflow, peak:        {peak:6.0f} MB")


if __name__ == "__main__":
    main()
