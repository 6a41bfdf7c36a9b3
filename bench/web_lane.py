"""Web uploads while API clients keep the inference pool full: the web lane against the API lane.

    python bench/web_lane.py [--api-clients 12] [--uploads 12]

One pool with the app's default shape (a worker per core, a queue of 8 with 4 slots reserved for the
web). `--api-clients` threads keep it full with API jobs, as remove.bg clients do (on "busy" they wait
the Retry-After, then send again). Meanwhile one page sends `--uploads` uploads one after the other,
each answered or refused at once; run twice in the same process: as the page sends them now (the web
lane, with its reserved slots) and as it did before (no reserved slots, the same lane as the API,
first come first served). Prints, side by side, how many uploads got in and their median latency
(queue + processing), with the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clearbg_app.inference import InferenceConfig, InferencePool, Job, ServerBusy  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "testdata" / "u2net_samples" / "images"
LIMIT = 100_000_000


def api_client(pool: InferencePool, data: bytes, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            pool.process(Job(data, LIMIT))
        except ServerBusy as busy:
            stop.wait(busy.retry_after)


def run(lane: str, api_clients: int, uploads: int, api_data: bytes, web_data: bytes) -> tuple[int, float]:
    """How many of the page's uploads got in, and their median seconds from sending to the result."""
    pool = InferencePool(InferenceConfig() if lane == "web" else InferenceConfig(web_reserved=0))
    stop = threading.Event()
    clients = [threading.Thread(target=api_client, args=(pool, api_data, stop)) for _ in range(api_clients)]
    try:
        for client in clients:
            client.start()
        time.sleep(2)  # the API has filled the queue
        accepted, latencies = 0, []
        for _ in range(uploads):
            started = time.perf_counter()
            try:
                pool.submit(Job(web_data, LIMIT, output_max_pixels=250_000), lane=lane).result()
            except ServerBusy:
                time.sleep(0.5)  # the page would show "busy"; the next upload comes a little later
                continue
            accepted += 1
            latencies.append(time.perf_counter() - started)
        return accepted, statistics.median(latencies) if latencies else float("nan")
    finally:
        stop.set()
        for client in clients:
            client.join()
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-clients", type=int, default=12)
    parser.add_argument("--uploads", type=int, default=12)
    args = parser.parse_args()
    api_data, web_data = (SAMPLES / "bike.jpg").read_bytes(), (SAMPLES / "horse.jpg").read_bytes()
    web = run("web", args.api_clients, args.uploads, api_data, web_data)
    api = run("api", args.api_clients, args.uploads, api_data, web_data)
    print(f"{args.api_clients} API clients keeping the pool full; the page sends {args.uploads} uploads\n")
    print("| the page's uploads sent in | got in | median latency s |\n|---|---|---|")
    for name, (accepted, latency) in (("web lane (now)", web), ("no web lane (before)", api)):
        print(f"| {name} | {accepted} of {args.uploads} | {latency:.2f} |" if accepted else f"| {name} | 0 of {args.uploads} | - |")
    latency = f", median latency x{web[1] / api[1]:.2f}" if api[0] and web[0] else ""
    print(f"\nratio now/before: uploads that got in x{web[0] / max(api[0], 1):.2f}{latency}")


if __name__ == "__main__":
    main()
