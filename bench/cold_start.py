"""Cold start: process start to the UI answering HTTP 200, on the bundled preset, best of N, alternating checkouts.

    python bench/cold_start.py [--repeats 2] [--before REF]

With --before, REF is checked out in a temporary git worktree and started alternately with this checkout, so both
meet the same machine load; each line is the best and the median of its starts.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_seconds(checkout: Path) -> float:
    """Seconds from `python app.py` to its first HTTP 200; the process is stopped after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=checkout, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PRESET": "bundled"})
    try:
        while time.perf_counter() - t < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{checkout}: no answer within 120 s")
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--before", help="a git ref to compare with (started alternately)")
    args = p.parse_args()
    checkouts = {"now": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if args.before:
            before = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=ROOT, check=True,
                           capture_output=True)
            checkouts = {f"before ({args.before})": before, **checkouts}
        try:
            times = {name: [] for name in checkouts}
            for _ in range(args.repeats):
                for name, checkout in checkouts.items():
                    times[name].append(start_seconds(checkout))
        finally:
            if args.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
    for name, values in times.items():
        print(f"{name}: best {min(values):.2f} s, median {statistics.median(values):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
