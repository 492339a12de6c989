"""Is bf16 autocast worth it for training the bundled image UNet on this CPU? (train_image.py uses it)

    python bench/bf16_training.py [--threads 2] [--batch 64] [--repeats 3]

Times one forward + backward of the image model's UNet (training/train_image.make_unet) on a batch
of 16x16 latents, fp32 vs `torch.autocast("cpu", dtype=torch.bfloat16)`, alternating so that drift
in the machine's speed hits both. Measured 2026-11-27 on the 2-core dev machine (avx512_bf16), quiet:
fp32 1.09 s, bf16 0.84 s per step at batch 64 (1.3x). The bundled image model was then trained in bf16
(74 min, one run); its meaning test scores as the earlier fp32-trained model's did (0.81-0.85 vs 0.84 of
checks right), though the two runs differ in more than precision, so this is not a clean A/B.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
from train_image import autocast, make_unet  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    unet = make_unet()
    x, c = torch.randn(args.batch, 4, 16, 16), torch.randn(args.batch, 16, 64)
    t = torch.randint(0, 1000, (args.batch,))

    def step(bf16: bool) -> None:
        with autocast("bf16" if bf16 else "fp32"):
            out = unet(x, t, c).sample
        out.float().pow(2).mean().backward()

    times = {False: [], True: []}
    for bf16 in (False, True) * 2:
        step(bf16)  # warm-up
        start = time.perf_counter()
        for _ in range(args.repeats):
            step(bf16)
        times[bf16].append((time.perf_counter() - start) / args.repeats)
    fp32, bf16 = min(times[False]), min(times[True])
    print(f"UNet forward+backward, batch {args.batch}, {args.threads} threads: fp32 {fp32:.3f} s, bf16 {bf16:.3f} s "
          f"({fp32 / bf16:.2f}x)")


if __name__ == "__main__":
    main()
