"""Load test: N concurrent clients send a mix of requests (image, audio, text, understand, text diffusion, and
bad ones) to a running app for a fixed time; reports what was sent, served, refused (bad input, a full queue)
and lost (anything else: an error with no message, a dropped connection, a wrong answer), p50/p95 seconds
per endpoint, and the server's RSS before, after warm-up and at the end.

    python app.py --max-queue 16 &          # the app under test, on the bundled preset
    python bench/load_test.py --url http://127.0.0.1:7860 --clients 8 --seconds 120 --pid $!
    python bench/load_test.py --seconds 1800 --pid $! --rss-every 10 --rss-csv bench/results/soak.csv   # the soak

Hostile requests are mixed in (bad values, a 4,000-message chat history, a system prompt that is not text) and
some requests are cancelled a moment after they are sent. Nothing should be lost, and RSS should stay flat after
warm-up: with --rss-every, the server's RSS is sampled that often and the report gives its slope (MB an hour) after
the first third of the run.
"""

import argparse
import csv
import json
import random
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

GOOD = {
    "/image": dict(prompt="a large red circle in the center on a blue background", negative_prompt="", num_inference_steps=10,
                   guidance_scale=3.0, seed=0, width=64, height=64),
    "/audio": dict(prompt="a fast drum beat", negative_prompt="", duration_s=2.0, num_inference_steps=10, guidance_scale=3.0,
                   seed=0),
    "/text": dict(prompt="Name a colour.", system_prompt="", max_new_tokens=16, temperature=0.7, top_p=0.9, seed=0),
    "/understand": dict(text="I loved it, what a wonderful day.", task="sentiment"),
    "/text_diffusion": dict(prompt="a small red circle on the left", gen_length=32, num_inference_steps=16, seed=0),
    "/chat": dict(prompt="Name a colour.", history=[{"role": "user", "content": "Hi"},
                                                    {"role": "assistant", "content": "Hello!"}],
                  system_prompt="", max_new_tokens=16, temperature=0.7, top_p=0.9, seed=0),
}
BAD = [("/image", dict(seed=-1)), ("/text", dict(top_p="abc")), ("/audio", dict(num_inference_steps=None)),
       ("/understand", dict(task="poetry")), ("/text_diffusion", dict(gen_length=30)), ("/image", dict(seed=1.5)),
       ("/chat", dict(history=[{"role": r, "content": ""} for _ in range(2000) for r in ("user", "assistant")])),
       ("/chat", dict(system_prompt={"a": 1})), ("/chat", dict(history="nonsense"))]
CANCEL_SHARE = 0.1  # requests cancelled 0.2 s after they are sent


def rss_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def client_loop(url: str, stop: float, seed: int, results: list, lock: threading.Lock) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError, ValidationError
    from gradio_client.utils import QueueError

    rng = random.Random(seed)
    client = Client(url, verbose=False)
    while time.time() < stop:
        bad = rng.random() < 0.2
        endpoint, change = rng.choice(BAD) if bad else (rng.choice(list(GOOD)), {})
        args = {**GOOD[endpoint], **change}
        if "seed" in args and "seed" not in change:  # every good request its own seed
            args["seed"] = rng.randrange(2**31)
        start = time.perf_counter()
        if not bad and rng.random() < CANCEL_SHARE:
            job = client.submit(**args, api_name=endpoint)
            time.sleep(0.2)
            job.cancel()
            with lock:
                results.append((endpoint, "cancelled", time.perf_counter() - start))
            continue
        try:
            out = client.predict(**args, api_name=endpoint)
            outcome = "lost" if bad or out is None else "served"  # a bad request served is a defect too
        except ValidationError:
            outcome = "refused" if bad else "lost"
        except QueueError:
            outcome = "busy"
        except AppError as exc:  # an error with a message naming the problem is a refusal; one without is lost
            outcome = "refused" if bad and str(exc).strip() else "lost"
        except Exception:  # noqa: BLE001  (dropped connections, timeouts: lost)
            outcome = "lost"
        with lock:
            results.append((endpoint, outcome, time.perf_counter() - start))


def slope(samples: list[tuple[float, float]]) -> float | None:
    """RSS growth in MB an hour after the first third of the run (least squares), or None with too few samples."""
    tail = samples[len(samples) // 3:]
    if len(tail) < 3:
        return None
    xs, ys = [t for t, _ in tail], [mb for _, mb in tail]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 3600, 1) if sxx else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--pid", type=int, default=None, help="the server's process id, for its RSS")
    p.add_argument("--rss-every", type=float, default=0, help="sample the server's RSS this often (seconds)")
    p.add_argument("--rss-csv", default=None, help="write the samples here (seconds, MB)")
    args = p.parse_args()
    before = rss_mb(args.pid)
    samples: list[tuple[float, float]] = []

    def sample(start: float, stop: float) -> None:
        while time.time() < stop:
            samples.append((round(time.time() - start, 1), rss_mb(args.pid)))
            time.sleep(args.rss_every)
    results: list = []
    lock = threading.Lock()
    stop = time.time() + args.seconds
    threads = [threading.Thread(target=client_loop, args=(args.url, stop, i, results, lock)) for i in range(args.clients)]
    if args.rss_every and args.pid:
        threads.append(threading.Thread(target=sample, args=(time.time(), stop), daemon=True))
    for t in threads:
        t.start()
    time.sleep(min(30, args.seconds / 3))
    warm = rss_mb(args.pid)
    for t in threads:
        t.join()
    after = rss_mb(args.pid)
    counts = defaultdict(int)
    times = defaultdict(list)
    for endpoint, outcome, seconds in results:
        counts[outcome] += 1
        if outcome == "served":
            times[endpoint].append(seconds)
    report = {
        "clients": args.clients, "seconds": args.seconds, "sent": len(results),
        **{k: counts[k] for k in ("served", "refused", "busy", "cancelled", "lost")},
        "p50_p95_seconds": {e: (round(statistics.median(v), 3), round(sorted(v)[int(0.95 * (len(v) - 1))], 3))
                            for e, v in sorted(times.items())},
        "rss_mb": {"before": before, "after_warm_up": warm, "end": after,
                   "peak": max((mb for _, mb in samples), default=None), "slope_mb_per_hour": slope(samples)},
    }
    if args.rss_csv and samples:
        Path(args.rss_csv).parent.mkdir(parents=True, exist_ok=True)
        with open(args.rss_csv, "w", newline="") as f:
            csv.writer(f).writerows([("seconds", "rss_mb"), *samples])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
