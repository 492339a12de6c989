"""How many threads a batch of images should run on when another process holds a core.

A batch of 8 bundled-model images (25 steps, 64x64, the raw diffusers call) at 1 and at 2 intra-op threads,
alternated, on a quiet machine and with a process spinning on one core beside it, under each OpenMP wait policy
(libgomp's default, which spins at barriers a while before sleeping, and OMP_WAIT_POLICY=PASSIVE, which sleeps at
once; the policy is read when the process starts, so each runs in its own process). Prints the median seconds.

    python bench/batch_threads.py [--rounds 3] [--batch 8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(rounds: int, batch: int) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from pipelines.image import ImagePipeline
    from pipelines.presets import get_spec

    pipe = ImagePipeline(get_spec("image", "bundled"), device="cpu").pipe
    prompts = ["a large red circle in the center on a blue background"] * batch

    def run(threads: int) -> float:
        torch.set_num_threads(threads)
        t = time.perf_counter()
        pipe(prompt=prompts, num_inference_steps=25, guidance_scale=4.0, width=64, height=64,
             generator=[torch.Generator().manual_seed(i) for i in range(batch)])
        return time.perf_counter() - t

    run(2), run(1)  # warm-up
    out = {}
    for load in ("quiet", "one core busy"):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load != "quiet" else None
        try:
            time.sleep(0.5)
            times = {1: [], 2: []}
            for _ in range(rounds):
                for threads in times:
                    times[threads].append(run(threads))
        finally:
            if hog:
                hog.kill()
        out[load] = {f"{k} threads": statistics.median(v) for k, v in times.items()}
        out[load]["all"] = {str(k): v for k, v in times.items()}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.rounds, args.batch)
    results = {}
    for policy in ("default", "PASSIVE"):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        out = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--batch", str(args.batch)],
                             env=env, capture_output=True, text=True, check=True).stdout
        results[policy] = json.loads(out.strip().splitlines()[-1])
        for load, seconds in results[policy].items():
            print(f"OMP_WAIT_POLICY={policy:8s} {load:14s} " + "  ".join(
                f"{k}: {v:5.2f} s" for k, v in seconds.items() if k != "all"), flush=True)
    path = ROOT / "bench" / "results" / "batch_threads.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
