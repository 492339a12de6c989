"""Train the bundled video model (models/tiny-shapes-motion) on procedural moving shapes, on the CPU.

    python training/train_video.py            # ~46 min on 2 cores; seeded and reproducible

It extends the bundled image model (models/tiny-shapes-image, left untouched) into an AnimateDiff
model, the way AnimateDiff extends Stable Diffusion, and saves three standard diffusers files:
1. a `MotionAdapter`: temporal attention layers after every spatial block (frames attend to each
   other); loaded with `AnimateDiffPipeline.from_pretrained(image_model, motion_adapter=...)`;
2. a LoRA on the image UNet's cross-attention (`attn2`): the motion layers attend across frames
   only, never to the text, so "moving left" must reach them through the spatial layers, which
   the image model trained to read "left" as a place; loaded with `pipe.load_lora_weights`;
3. textual-inversion embeddings for the motion phrases ("moving left", "growing"...), one per
   phrase *and frame*: frame k's text carries the token "moving left@k" (`clips.frame_token`), so
   each frame's text says where the motion has got to, in terms the image model's spatial layers
   already draw; loaded with `pipe.load_textual_inversion`; at sampling, `pipelines/video.py`
   gives every frame its own prompt (diffusers' FreeNoise per-frame prompts, one context window).
   (The motion layers never see the text, and with one embedding per phrase the direction never
   got through: a first model moved its shapes, but the way their first frame's layout suggested.)
The image model's own weights stay frozen. Loss: v-prediction on whole clips (one timestep per
clip, 70% of them in the noisier half where the layout is decided; fresh noise per frame), the
object's latent pixels weighted up, as for the image model.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AnimateDiffPipeline, DDPMScheduler, MotionAdapter, StableDiffusionPipeline, UNetMotionModel
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from clips import FRAME_INIT, FRAME_TOKENS, MOTIONS, NUM_FRAMES, sample  # noqa: E402
from shapes import COLOURS, VOCABULARY  # noqa: E402
from train_image import cosine_lr, log, update  # noqa: E402

from pipelines.video import frame_token  # noqa: E402

LORA_TARGETS = r".*attentions\.\d+\.transformer_blocks\.\d+\.attn2\.(to_q|to_k|to_v|to_out\.0)"  # spatial cross-attention only


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-model", default=str(ROOT / "models" / "tiny-shapes-image"))
    p.add_argument("--out", default=str(ROOT / "models" / "tiny-shapes-motion"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-clips", type=int, default=3000)  # rendered and encoded once
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=4)  # clips per step (x NUM_FRAMES frames)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--high-noise", type=float, default=0.7)  # share of clips trained at t >= 500
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--object-weight", type=float, default=4.0)  # loss weight of latent pixels the shape covers
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--snapshot-every", type=int, default=0)  # save <out>-snapshot every N steps (0: never)
    return p.parse_args()


def make_adapter(unet) -> MotionAdapter:
    """A MotionAdapter shaped like the image UNet: one temporal transformer per spatial layer."""
    adapter = MotionAdapter(
        block_out_channels=unet.config.block_out_channels, motion_layers_per_block=unet.config.layers_per_block,
        motion_num_attention_heads=4, motion_norm_num_groups=unet.config.norm_num_groups, motion_max_seq_length=32,
        use_motion_mid_block=True,
    )
    for module in adapter.modules():  # AnimateDiff's init: each temporal block starts as the identity
        if hasattr(module, "proj_out") and hasattr(module, "transformer_blocks"):
            torch.nn.init.zeros_(module.proj_out.weight)
            torch.nn.init.zeros_(module.proj_out.bias)
    return adapter


def save(out: Path, unet: UNetMotionModel, text_encoder, tokenizer, new_ids: list[int], info: dict) -> None:
    """Write the adapter (fp16), the LoRA and the new word embeddings as safetensors, plus training_info.json."""
    out.mkdir(parents=True, exist_ok=True)
    motion = {k: v for k, v in unet.state_dict().items() if "motion_modules" in k}
    adapter = make_adapter(unet)
    adapter.load_state_dict(motion)  # strict: the adapter has exactly the UNet's motion modules
    adapter.to(torch.float16).save_pretrained(out, safe_serialization=True)
    lora = {k: v.to(torch.float16) for k, v in convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)).items()}
    AnimateDiffPipeline.save_lora_weights(out, unet_lora_layers=lora, safe_serialization=True)
    table = text_encoder.get_input_embeddings().weight.detach()
    words = tokenizer.convert_ids_to_tokens(new_ids)
    save_file({w: table[i].clone().to(torch.float16)[None] for w, i in zip(words, new_ids)}, out / "words.safetensors")
    (out / "training_info.json").write_text(json.dumps(info, indent=1) + "\n")


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    # 1. The frozen image model; its UNet becomes a UNetMotionModel with fresh temporal layers.
    image = StableDiffusionPipeline.from_pretrained(args.image_model, dtype=torch.float32, safety_checker=None)
    vae, tokenizer, text_encoder = image.vae.eval(), image.tokenizer, image.text_encoder
    vae.requires_grad_(False)
    text_encoder.requires_grad_(False)
    unet = UNetMotionModel.from_unet2d(image.unet, make_adapter(image.unet))
    unet.add_adapter(LoraConfig(r=args.lora_rank, lora_alpha=args.lora_rank, init_lora_weights="gaussian",
                                target_modules=LORA_TARGETS))  # a LoRA on the spatial cross-attention...
    for name, param in unet.named_parameters():  # ...and the motion modules train (add_adapter froze all but the LoRA)
        param.requires_grad_("motion_modules" in name or "lora_" in name)

    # 2. New tokens, one per motion phrase and frame, initialised from the words for where (or how large) the shape
    #    is at that frame (clips.FRAME_INIT: "moving right@k" is k/7 of the way from "left" to "right"); only
    #    their rows train.
    tokenizer.add_tokens(FRAME_TOKENS)
    new_ids = tokenizer.convert_tokens_to_ids(FRAME_TOKENS)
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        for phrase, (first, last) in FRAME_INIT.items():
            ids = [tokenizer.convert_tokens_to_ids(f"{w}</w>") for w in (first, last)]
            if tokenizer.unk_token_id in ids:
                raise SystemExit(f"the image model's tokenizer lacks {first!r} or {last!r}")
            a, b = table[ids[0]], table[ids[1]]
            for k in range(NUM_FRAMES):
                table[tokenizer.convert_tokens_to_ids(frame_token(phrase, k))] = torch.lerp(a, b, k / (NUM_FRAMES - 1))
    table.requires_grad_(True)
    row_mask = torch.zeros(len(tokenizer), 1)
    row_mask[new_ids] = 1
    table.register_hook(lambda grad: grad * row_mask)  # the image model's words stay as they are

    # 3. Data: render the clips once, encode every frame with the image model's VAE (scaled latents).
    log(f"rendering and encoding {args.num_clips} clips of {NUM_FRAMES} frames")
    latents, weights, clips = [], [], []
    scale = vae.config.scaling_factor
    for start in range(0, args.num_clips, 32):
        batch = [sample(rng) for _ in range(min(32, args.num_clips - start))]
        pixels = torch.from_numpy(np.stack([f for f, _ in batch])).float().div(127.5).sub(1)  # B,F,H,W,3
        pixels = pixels.permute(0, 1, 4, 2, 3).flatten(0, 1)  # B*F,3,H,W
        with torch.no_grad():
            z = vae.encode(pixels).latent_dist.mode() * scale
        latents.append(z.unflatten(0, (len(batch), NUM_FRAMES)))
        bg = torch.tensor([COLOURS[c.background] for _, c in batch], dtype=torch.float32).div(127.5).sub(1)
        bg = bg.repeat_interleave(NUM_FRAMES, 0)[:, :, None, None]
        covered = ((pixels - bg).abs().amax(1, keepdim=True) > 0.1).float()
        w = 1 + (args.object_weight - 1) * F.avg_pool2d(covered, pixels.shape[-1] // z.shape[-1])
        weights.append(w.unflatten(0, (len(batch), NUM_FRAMES)))
        clips += [c for _, c in batch]
    latents, weights = torch.cat(latents), torch.cat(weights)  # N,F,4,16,16 and N,F,1,16,16
    log(f"latents {tuple(latents.shape)} in {(time.time() - t0) / 60:.1f} min")

    # 4. Train: v-prediction, one timestep per clip, the image model's zero-terminal-SNR schedule.
    noise_scheduler = DDPMScheduler.from_config(image.scheduler.config)  # the saved DDIM config has the same betas
    noise_scheduler.register_to_config(prediction_type="v_prediction")
    motion_params = [p for n, p in unet.named_parameters() if p.requires_grad]
    log(f"training {sum(p.numel() for p in motion_params)} motion + LoRA parameters and {len(new_ids)} word embeddings")
    opt = torch.optim.AdamW([{"params": motion_params, "weight_decay": 0.01},
                             {"params": [table], "weight_decay": 0.0, "lr_scale": 10.0}], lr=args.lr)
    ema = [p.detach().clone() for p in motion_params] + [table.detach().clone()]
    live = motion_params + [table]
    caption_rng = random.Random(args.seed + 1)

    def captions(clip) -> list[str]:  # one per frame; size/colour/background each left out with p=0.25,
        if caption_rng.random() < 0.1:  # the whole caption with p=0.1 (for classifier-free guidance)
            return [""] * NUM_FRAMES
        return clip.frame_captions(clip.caption(caption_rng, drop=0.25))

    unet.train()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, args.lr) * g.get("lr_scale", 1.0)
        idx = torch.randint(0, len(latents), (args.batch_size,))
        x0 = latents[idx].permute(0, 2, 1, 3, 4)  # B,C,F,H,W as AnimateDiff's UNet takes it
        ids = tokenizer([c for i in idx.tolist() for c in captions(clips[i])], padding="max_length",
                        max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        noise = torch.randn_like(x0)
        # Where the object is, and so how it moves, is decided at high noise; the frozen image model already
        # draws the details at low noise. So 70% of clips get t in the noisier half (the rest: anywhere).
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(x0),))
        high = torch.rand(len(x0)) < args.high_noise
        t[high] = torch.randint(noise_scheduler.config.num_train_timesteps // 2, noise_scheduler.config.num_train_timesteps,
                                (int(high.sum()),))
        xt = noise_scheduler.add_noise(x0, noise, t)
        target = noise_scheduler.get_velocity(x0, noise, t)
        text = text_encoder(ids)[0]  # B*F: each frame its own text
        pred = unet(xt, t, text).sample
        w = weights[idx].permute(0, 2, 1, 3, 4)
        loss = ((pred - target) ** 2 * w).sum() / (w.sum() * pred.shape[1])
        update(opt, live, loss, [(ema, live)], step)
        if step % 50 == 0 or step == args.steps - 1:
            log(f"step {step} loss {loss.item():.4f} elapsed {(time.time() - t0) / 60:.1f} min")
        if args.snapshot_every and step and step % args.snapshot_every == 0:
            save_ema(Path(args.out + "-snapshot"), unet, text_encoder, tokenizer, new_ids, ema, live, {})

    # 5. Save the EMA weights.
    info = {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "num_clips": args.num_clips,
            "num_frames": NUM_FRAMES, "lr": args.lr, "high_noise": args.high_noise, "lora_rank": args.lora_rank,
            "object_weight": args.object_weight,
            "image_model": os.path.relpath(args.image_model, ROOT), "minutes": round((time.time() - t0) / 60, 1),
            "vocabulary": sorted(set(VOCABULARY) | set(MOTIONS)), "motions": list(MOTIONS)}
    save_ema(Path(args.out), unet, text_encoder, tokenizer, new_ids, ema, live, info)
    log(f"saved {args.out} in {(time.time() - t0) / 60:.1f} min")


def save_ema(out, unet, text_encoder, tokenizer, new_ids, ema, live, info) -> None:
    """Save with the EMA values swapped in, then put the live values back (training may go on)."""
    backup = [p.detach().clone() for p in live]
    with torch.no_grad():
        for p, e in zip(live, ema):
            p.copy_(e)
    save(out, unet, text_encoder, tokenizer, new_ids, info)
    with torch.no_grad():
        for p, b in zip(live, backup):
            p.copy_(b)


if __name__ == "__main__":
    main()
