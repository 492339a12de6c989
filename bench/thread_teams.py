"""Why each request's worker uses one intra-op thread on a CPU (pipelines.base.Tuning.torch_threads).

Times the raw diffusers call of the bundled image model (25 steps, 64x64) run on
1. one thread with 2 intra-op threads, before any other thread has used torch;
2. the same thread and a second one, alternately, each with 2 intra-op threads (what a server does:
   requests arrive on different threads), so each has its own OpenMP team;
3. fresh threads with 1 intra-op thread each.

    python bench/thread_teams.py [--repeats 3]
"""

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.image import ImagePipeline  # noqa: E402
from pipelines.presets import get_spec  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    model = ImagePipeline(get_spec("image", "bundled"), device="cpu")
    kw = dict(prompt="a large red circle in the center on a blue background", num_inference_steps=25,
              guidance_scale=4.0, width=64, height=64)

    def raw(threads: int):
        def run():
            torch.set_num_threads(threads)
            t = time.perf_counter()
            model.pipe(**kw, generator=torch.Generator().manual_seed(0))
            return time.perf_counter() - t
        return run

    first, second = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    first.submit(raw(2)).result()  # load + warm up
    one_team = [first.submit(raw(2)).result() for _ in range(args.repeats)]
    two_teams = []
    for _ in range(args.repeats):
        two_teams += [second.submit(raw(2)).result(), first.submit(raw(2)).result()]
    single = [ThreadPoolExecutor(1).submit(raw(1)).result() for _ in range(args.repeats)]
    results = {"2 threads, one thread ever used torch": statistics.median(one_team),
               "2 threads, two threads take turns": statistics.median(two_teams),
               "1 thread, a fresh thread per call": statistics.median(single)}
    for name, seconds in results.items():
        print(f"{seconds:6.3f} s  {name}")


if __name__ == "__main__":
    main()
