"""Freshness probe for bench/freshness.sh: every --interval seconds it produces one play with
ts = now for a video id of its own to the plays topic (keyed by a member id like the generator's),
and polls the API's per-video route until the play shows up. Prints one JSON object: the samples
(seconds from produce to visible) and their percentiles.

  probe_freshness.py --brokers B --topic T --api http://127.0.0.1:PORT --samples 300
"""

import argparse
import datetime as dt
import http.client
import json
import random
import sys
import time
import urllib.parse

from confluent_kafka import Producer


def utc_iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def day_iso(t: float, offset_days: int) -> str:
    d = dt.datetime.fromtimestamp(t, dt.timezone.utc).date() + dt.timedelta(days=offset_days)
    return d.isoformat() + "T00:00:00Z"


def percentile(sorted_xs, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_xs:
        return None
    k = max(0, min(len(sorted_xs) - 1, int(-(-q * len(sorted_xs) // 100)) - 1))
    return sorted_xs[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True, help="the plays topic")
    ap.add_argument("--api", required=True, help="base URL of `playsource serve`")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between probes")
    ap.add_argument("--timeout", type=float, default=30.0, help="a probe not visible by then is lost")
    ap.add_argument("--members", type=int, default=1_000_000, help="the generator's --members")
    ap.add_argument("--video-base", type=int, default=500_000_000, help="first probe video id")
    args = ap.parse_args()

    url = urllib.parse.urlsplit(args.api)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    producer = Producer({"bootstrap.servers": args.brokers, "linger.ms": 0, "acks": "all"})
    run = f"{int(time.time())}-{random.randrange(1 << 30)}"
    errors = []

    def visible(video_id: int, t: float) -> bool:
        path = f"/v1/videos/{video_id}/discovery?from={day_iso(t, -1)}&to={day_iso(t, 2)}"
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            errors.append(f"{resp.status} {body[:200]!r}")
            return False
        return json.loads(body)["plays"] > 0

    pending = {}  # video_id -> produce time
    samples, lost, api_calls = [], 0, 0
    sent, next_send = 0, time.time()
    while sent < args.samples or pending:
        now = time.time()
        if sent < args.samples and now >= next_send:
            video_id = args.video_base + sent
            member = 1_000_000 + 13 * random.randrange(args.members)
            play = {
                "event_id": f"probe-{run}-{sent}",
                "ts": utc_iso(now),
                "member_id": member,
                "video_id": video_id,
                "country": "US",
                "device": "tv",
            }
            producer.produce(args.topic, key=str(member), value=json.dumps(play))
            producer.poll(0)
            pending[video_id] = now
            sent += 1
            next_send += args.interval
        for video_id, t in list(pending.items()):
            api_calls += 1
            if visible(video_id, t):
                samples.append(time.time() - t)
                del pending[video_id]
            elif time.time() - t > args.timeout:
                lost += 1
                del pending[video_id]
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(10)

    xs = sorted(samples)
    out = {
        "samples": len(xs),
        "lost": lost,
        "api_calls": api_calls,
        "api_errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50": percentile(xs, 50),
        "p95": percentile(xs, 95),
        "p99": percentile(xs, 99),
        "max": xs[-1] if xs else None,
        "min": xs[0] if xs else None,
    }
    json.dump(out, sys.stdout)
    print()
    return 0 if xs and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
