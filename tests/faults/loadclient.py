"""A bounded load client: ``count`` GETs to one loopback server from ``threads`` threads, then a JSON summary.

Run as ``python -m tests.faults.loadclient PORT COUNT THREADS PATH OUT``;
it writes ``{"served", "failed", "task_ids", "seconds", "peak_rss_kib"}`` to OUT.
It only ever connects to 127.0.0.1, stops after COUNT requests, and gives up
on any single request after 30 s.
"""

from __future__ import annotations

import http.client
import json
import resource
import sys
import threading
import time


def main(port: int, count: int, threads: int, path: str, out: str) -> None:
    lock = threading.Lock()
    todo = iter(range(count))
    served = 0
    failed: list[str] = []
    task_ids: list[str] = []

    def client() -> None:
        nonlocal served
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if next(todo, None) is None:
                    break
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                with lock:
                    failed.append(repr(exc))
                continue
            with lock:
                if response.status == 200:
                    served += 1
                    task_ids.extend(json.loads(body).get("task_ids", []))
                else:
                    failed.append(f"HTTP {response.status}")
        connection.close()

    started = time.monotonic()
    pool = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(600)
    summary = {
        "served": served,
        "failed": failed[:20],
        "failed_count": len(failed),
        "task_ids": task_ids,
        "seconds": round(time.monotonic() - started, 2),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(summary, handle)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
