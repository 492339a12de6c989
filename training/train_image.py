"""Train the bundled text-to-image model (models/tiny-shapes-image) on procedural shapes, on the CPU.

    python training/train_image.py            # one run, 74 min on 2 CPU cores; seeded and reproducible

It makes a standard `StableDiffusionPipeline` folder, trained from scratch in two stages:
1. a tiny `AutoencoderKL` (64x64x3 <-> 16x16x4), on shape images, then its decoder alone with an L1
   loss for sharp edges;
2. a tiny `CLIPTextModel` + `UNet2DConditionModel` on the VAE's latents (v-prediction with a
   zero-terminal-SNR schedule, so that flat background colours come out right from pure noise), with
   the latent pixels the shape covers weighted up (`--object-weight`).
Captions are dropped 10% of the time so classifier-free guidance and negative prompts work.
Forward passes run in bf16 autocast (`--precision`): a UNet training step took 0.84 s vs 1.26 s in fp32 on the
2-core dev machine (avx512_bf16).
"""

import argparse
import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).parent))
from shapes import COLOURS, VOCABULARY, sample  # noqa: E402
from tokenizer import build_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "models" / "tiny-shapes-image"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=24000)  # rendered once, captions re-dropped each epoch
    p.add_argument("--vae-steps", type=int, default=600)
    p.add_argument("--decoder-steps", type=int, default=1200)
    p.add_argument("--unet-steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vae-from", default=None, help="reuse a trained VAE folder and skip stage 2 (saves ~15 min)")
    p.add_argument("--resume", metavar="FOLDER", default=None,
                   help="train the text encoder + UNet of a finished pipeline folder further (its VAE is kept)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--object-weight", type=float, default=4.0,
                   help="loss weight of the latent pixels the shape covers (1: plain MSE); shapes are learnt sooner")
    p.add_argument("--sharpen", metavar="FOLDER", default=None,
                   help="only run stage 2b on a trained pipeline folder: sharpen its VAE decoder, save it back")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16",
                   help="bf16: forward passes under torch.autocast (weights, optimiser and loss stay fp32); "
                        "1.5x faster per UNet step on the 2-core dev machine (bench/bf16_training.py)")
    p.add_argument("--snapshot-every", type=int, default=0)  # save <out>-snapshot every N steps (0: never)
    return p.parse_args()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        block_out_channels=(32, 32, 64),  # three levels: 64 -> 32 -> 16
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1, norm_num_groups=16,
    )


def make_text_encoder(vocab_size: int) -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))


def make_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=32,
    )


def update(opt, params, loss, emas, step: int) -> None:
    """One optimiser step (gradients clipped to norm 1), then move each EMA copy toward its live model.

    `emas`: (ema, live) pairs, each a module or a list of tensors.
    """
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    decay = min(0.999, (1 + step) / (10 + step))  # short memory at first, 0.999 once warmed up
    tensors = lambda m: m.parameters() if isinstance(m, torch.nn.Module) else m  # noqa: E731
    with torch.no_grad():
        for ema, live in emas:
            for pe, pl in zip(tensors(ema), tensors(live)):
                pe.lerp_(pl, 1 - decay)


def autocast(precision: str):
    """Mixed precision for the forward passes: bf16 matmuls and convolutions, fp32 master weights."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def cosine_lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def sharpen_decoder(vae: AutoencoderKL, pixels: torch.Tensor, steps: int, seed: int, precision: str) -> None:
    """Stage 2b: train the decoder alone, with an L1 loss, so that flat shapes come back with sharp edges.

    An MSE-trained autoencoder rounds the corners of squares and triangles. The encoder (and so the
    latent space the UNet learns) is frozen, which is why this can also run on a finished model
    (`--sharpen FOLDER`) without retraining its UNet.
    """
    vae.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=5e-4)
    gen = torch.Generator().manual_seed(seed)
    vae.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, 5e-4, warmup=50)
        x = pixels[torch.randint(0, len(pixels), (32,), generator=gen)]
        with autocast(precision):
            with torch.no_grad():
                z = vae.encode(x).latent_dist.sample(gen)
            recon = vae.decode(z).sample
        loss = F.l1_loss(recon.float(), x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            log(f"decoder step {step} l1 {loss.item():.5f}")
    vae.eval().requires_grad_(False)


def render_images(n: int, rng: random.Random) -> tuple[torch.Tensor, list]:
    """n training images as an N,3,64,64 tensor in [-1, 1], and the scene each one shows."""
    images, scenes = [], []
    for _ in range(n):
        arr, scene = sample(rng)
        images.append(arr)
        scenes.append(scene)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1), scenes


def sharpen_folder(args) -> None:
    """--sharpen FOLDER: stage 2b alone, on a finished pipeline folder (its UNet stays valid)."""
    t0 = time.time()
    folder = Path(args.sharpen)
    vae = AutoencoderKL.from_pretrained(folder / "vae", dtype=torch.float32)
    pixels, _ = render_images(min(args.num_images, 8000), random.Random(args.seed + 2))
    sharpen_decoder(vae, pixels, args.decoder_steps, args.seed + 2, args.precision)
    vae.to(torch.float16).save_pretrained(folder / "vae", safe_serialization=True)
    info_path = folder / "training_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update(decoder_steps=args.decoder_steps, decoder_minutes=round((time.time() - t0) / 60, 1))
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    log(f"sharpened {folder / 'vae'} in {(time.time() - t0) / 60:.1f} min")


def save_pipeline(out, vae, text_encoder, tokenizer, unet, noise_scheduler) -> None:
    """Save a standard StableDiffusionPipeline folder: fp16 safetensors (loaded back as fp32)."""
    scheduler = DDIMScheduler.from_config(noise_scheduler.config, timestep_spacing="trailing", clip_sample=False,
                                          set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=copy.deepcopy(vae), text_encoder=copy.deepcopy(text_encoder), tokenizer=tokenizer,
                                   unet=copy.deepcopy(unet), scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.sharpen:
        return sharpen_folder(args)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    # 1. Data: render the images once; keep each one's scene so captions can be re-dropped.
    log(f"rendering {args.num_images} images")
    pixels, scenes = render_images(args.num_images, rng)

    # 2. VAE: reconstruction + a whisper of KL, as Stable Diffusion's autoencoder.
    if args.resume:
        args.vae_from = str(Path(args.resume) / "vae")
    vae = make_vae() if args.vae_from is None else AutoencoderKL.from_pretrained(args.vae_from, dtype=torch.float32)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    for step in range(args.vae_steps if args.vae_from is None else 0):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.vae_steps, 1e-3, warmup=50)
        x = pixels[torch.randint(0, len(pixels), (32,))]
        with autocast(args.precision):
            posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.sample()).sample
        loss = F.mse_loss(recon.float(), x) + 1e-6 * posterior.kl().float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == args.vae_steps - 1:
            log(f"vae step {step} loss {loss.item():.5f}")
    if args.vae_from is None:
        sharpen_decoder(vae, pixels, args.decoder_steps, args.seed + 2, args.precision)
    vae.eval().requires_grad_(False)

    # 3. Encode every image once; scale latents to unit variance (the VAE's scaling_factor).
    with torch.no_grad():
        latents = torch.cat([vae.encode(pixels[i:i + 256]).latent_dist.mode() for i in range(0, len(pixels), 256)])
    scaling_factor = vae.config.scaling_factor if args.resume else float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling_factor)
    latents = latents * scaling_factor
    log(f"latents {tuple(latents.shape)}, scaling_factor {scaling_factor:.4f}")

    # Where the shape is, per latent pixel: those pixels weigh `object_weight` in the loss, so that
    # the few latent pixels that carry the shape are not drowned by the flat background.
    backgrounds = torch.tensor([COLOURS[s.background] for s in scenes], dtype=torch.float32).div(127.5).sub(1)
    covered = ((pixels - backgrounds[:, :, None, None]).abs().amax(1, keepdim=True) > 0.1).float()
    weights = 1 + (args.object_weight - 1) * F.avg_pool2d(covered, 64 // latents.shape[-1])

    # 4. Text encoder + UNet, trained together with v-prediction on a zero-terminal-SNR schedule.
    if args.resume:
        tokenizer = CLIPTokenizer.from_pretrained(Path(args.resume) / "tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(Path(args.resume) / "text_encoder", dtype=torch.float32)
        unet = UNet2DConditionModel.from_pretrained(Path(args.resume) / "unet", dtype=torch.float32)
    else:
        tokenizer = build_tokenizer(VOCABULARY)
        text_encoder = make_text_encoder(len(tokenizer))
        unet = make_unet()
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        prediction_type="v_prediction", rescale_betas_zero_snr=True,
    )
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema_unet, ema_text = copy.deepcopy(unet).requires_grad_(False), copy.deepcopy(text_encoder).requires_grad_(False)
    caption_rng = random.Random(args.seed + 1)

    def caption(scene) -> str:
        # Each part of the caption is left out with p=0.25; the whole caption with p=0.1 (for CFG).
        return "" if caption_rng.random() < 0.1 else scene.caption(caption_rng, drop=0.25)

    for step in range(args.unet_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.unet_steps, args.lr)
        idx = torch.randint(0, len(latents), (args.batch_size,))
        x0 = latents[idx]
        ids = tokenizer([caption(scenes[i]) for i in idx.tolist()], padding="max_length",
                        max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),))
        xt = noise_scheduler.add_noise(x0, noise, t)
        target = noise_scheduler.get_velocity(x0, noise, t)
        with autocast(args.precision):
            pred = unet(xt, t, text_encoder(ids)[0]).sample.float()
        w = weights[idx]
        loss = ((pred - target) ** 2 * w).sum() / (w.sum() * pred.shape[1])
        update(opt, params, loss, ((ema_unet, unet), (ema_text, text_encoder)), step)
        if args.snapshot_every and step and step % args.snapshot_every == 0:  # to look at while it trains
            save_pipeline(args.out + "-snapshot", vae, ema_text, tokenizer, ema_unet, noise_scheduler)
        if step % 50 == 0 or step == args.unet_steps - 1:
            log(f"unet step {step} loss {loss.item():.4f} elapsed {(time.time() - t0) / 60:.1f} min")

    # 5. Save a standard StableDiffusionPipeline folder, fp16 weights (loaded back as fp32).
    save_pipeline(args.out, vae, ema_text, tokenizer, ema_unet, noise_scheduler)
    run = {"seed": args.seed, "unet_steps": args.unet_steps, "lr": args.lr, "object_weight": args.object_weight,
           "batch_size": args.batch_size, "precision": args.precision, "num_images": args.num_images,
           "minutes": round((time.time() - t0) / 60, 1)}
    if args.resume:  # keep the history of the model this run started from
        info = json.loads(Path(args.resume, "training_info.json").read_text())
        info.setdefault("resumed", []).append(run)
    else:
        info = {**run, "vae_steps": args.vae_steps, "vae_from": args.vae_from,
                "decoder_steps": 0 if args.vae_from else args.decoder_steps}
    info["vocabulary"] = VOCABULARY
    Path(args.out, "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"saved {args.out} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
