"""Train the bundled image model's preview decoder: a diffusers `AutoencoderTiny` (TAESD's class) whose decoder
turns a step's predicted-clean latents into the picture about 10x cheaper than the model's own VAE decoder.

    python training/train_preview.py [--prompts 32] [--steps 800] [--seed 0]      # about 6 minutes on 2 cores

1. The data is the image model's own: its predicted clean latents (x0) at every one of 25 denoising steps, for
   random captions of training/shapes.py's scenes, and what the model's VAE decodes from each.
2. Only the decoder is trained (L1 to the VAE's decode): previews never encode. The encoder keeps its seeded
   initial weights, and the folder is loaded as an AutoencoderTiny for its `decode`.
3. Saved (safetensors) to models/tiny-shapes-image/preview_decoder with training_info.json, which records the
   mean absolute error against the VAE on captions and seeds the training never used.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from shapes import random_scene  # noqa: E402

from pipelines.diffusion import recording_x0  # noqa: E402

STEPS = 25  # the bundled image model's default


def latents_and_decodes(pipe, captions: list[str], seed: int, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0 / scaling_factor at every step, the VAE's decode of each), for `captions` denoised `batch` at a time."""
    xs, images = [], []
    for i in range(0, len(captions), batch):
        prompts = captions[i:i + batch]
        seen = []
        with recording_x0(pipe.scheduler) as record:
            def keep(p, step, t, kwargs, seen=seen, record=record):
                seen.append(record["x0"].detach().clone())
                return kwargs

            generators = [torch.Generator("cpu").manual_seed(seed * 100_000 + i + k) for k in range(len(prompts))]
            pipe(prompt=prompts, num_inference_steps=STEPS, guidance_scale=3.0, width=64, height=64,
                 generator=generators, callback_on_step_end=keep)
        x0 = torch.cat(seen) / pipe.vae.config.scaling_factor
        with torch.no_grad():
            images.append(pipe.vae.decode(x0).sample.clamp(-1, 1))
        xs.append(x0)
    return torch.cat(xs), torch.cat(images)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "models" / "tiny-shapes-image"))
    p.add_argument("--out", default=None, help="default: MODEL/preview_decoder")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--channels", type=int, default=16, help="the decoder's width")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latent-scale", type=float, default=2.5,
                   help="latents are divided by this before decoding (AutoencoderTiny's scaling_factor): DecoderTiny "
                        "clamps its input with tanh(x / 3) * 3, and this VAE's latents reach about 7")
    p.add_argument("--cache", default=None, help="keep the collected latents and decodes here (a .pt file)")
    args = p.parse_args()
    from diffusers import AutoencoderTiny, StableDiffusionPipeline

    t0 = time.time()
    torch.manual_seed(args.seed)
    pipe = StableDiffusionPipeline.from_pretrained(args.model, dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    rng = random.Random(args.seed)
    captions = [random_scene(rng).caption(rng, drop=0.25) for _ in range(args.prompts)]
    held_out = [random_scene(rng).caption(rng, drop=0.25) for _ in range(8)]
    # 1. The data: every step's x0 and its decode.
    if args.cache and Path(args.cache).exists():
        x, y, x_val, y_val = torch.load(args.cache)
    else:
        x, y = latents_and_decodes(pipe, captions, args.seed)
        x_val, y_val = latents_and_decodes(pipe, held_out, args.seed + 1)
        if args.cache:
            torch.save((x, y, x_val, y_val), args.cache)
    x, x_val = x / args.latent_scale, x_val / args.latent_scale
    print(f"data: {len(x)} latents ({time.time() - t0:.0f} s)", flush=True)
    # 2. The decoder: upsampling 4x (16 -> 64), as the model's VAE does.
    tiny = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8), decoder_block_out_channels=(args.channels,) * 3,
                           num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1),
                           latent_channels=pipe.vae.config.latent_channels, scaling_factor=args.latent_scale)
    optimiser = torch.optim.Adam(tiny.decoder.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps)
    g = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x), (args.batch_size,), generator=g)
        loss = (tiny.decode(x[idx]).sample - y[idx]).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: L1 {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    # 3. Held out: the mean absolute error in 0-255 per channel, all steps and the last.
    with torch.no_grad():
        pred = tiny.decode(x_val).sample.clamp(-1, 1)
    mae = float((pred - y_val).abs().mean() * 127.5)
    last = float((pred[STEPS - 1::STEPS] - y_val[STEPS - 1::STEPS]).abs().mean() * 127.5)
    out = Path(args.out or Path(args.model) / "preview_decoder")
    tiny.save_pretrained(out)
    info = {"seed": args.seed, "prompts": args.prompts, "steps": args.steps, "batch_size": args.batch_size,
            "channels": args.channels, "latent_scale": args.latent_scale,
            "lr": args.lr, "teacher": "the model's AutoencoderKL decoder, on its own x0 at each of 25 steps",
            "encoder": "untrained (previews only decode)", "held_out_mae_0_255": round(mae, 2),
            "held_out_mae_last_step": round(last, 2), "minutes": round((time.time() - t0) / 60, 1)}
    (out / "training_info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
