#!/usr/bin/env python3
"""A small closed-loop HTTP load generator (wrk is not always installed): C threads, each with
one keep-alive connection, GET the URL back to back for D seconds after a warm-up; prints one JSON
line with requests/s, p50/p90/p99/max latency (ms) and the non-2xx count.

usage: load.py URL TOKEN [-c 16] [-d 20] [--warmup 3]
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def worker(url, token, stop_at, warm_until, out, errors):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        t0 = time.perf_counter()
        if t0 >= stop_at:
            break
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            status = r.status
        except Exception:  # noqa: BLE001 — count and reconnect
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            status = 0
        t1 = time.perf_counter()
        if t0 >= warm_until:
            out.append((t1 - t0) * 1000.0)
            if not 200 <= status < 300:
                errors.append(status)
    conn.close()


def pct(sorted_ms, p):
    if not sorted_ms:
        return None
    k = min(len(sorted_ms) - 1, max(0, int(round(p * len(sorted_ms) + 0.5)) - 1))
    return round(sorted_ms[k], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("-c", type=int, default=16)
    ap.add_argument("-d", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    a = ap.parse_args()
    start = time.perf_counter()
    warm_until = start + a.warmup
    stop_at = warm_until + a.d
    lat, errors = [], []
    ts = [
        threading.Thread(target=worker, args=(a.url, a.token, stop_at, warm_until, lat, errors))
        for _ in range(a.c)
    ]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    print(json.dumps({
        "c": a.c, "seconds": a.d, "requests": len(lat),
        "rps": round(len(lat) / a.d, 1),
        "p50_ms": pct(lat, 0.50), "p90_ms": pct(lat, 0.90), "p99_ms": pct(lat, 0.99),
        "max_ms": round(lat[-1], 1) if lat else None,
        "non_2xx": len(errors),
    }))


if __name__ == "__main__":
    main()
