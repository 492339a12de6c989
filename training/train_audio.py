"""Train the bundled text-to-audio model (models/tiny-sounds-audio) on procedural sounds, on the CPU.

    python training/train_audio.py            # 85-93 min on 2 cores (2.1-2.3 s a step measured); seeded

It makes a `MelDiffusionPipeline` folder (pipelines/audio.py): AudioLDM's recipe without the VAE.
1. Render captioned 2-second clips (training/sounds.py) and turn each into a scaled log-mel
   spectrogram (128 frames x 64 mels) with the pipeline's own `GriffinLimVocoder.encode`.
2. Train a tiny `CLIPTextModel` + `UNet2DConditionModel` to denoise those mels (v-prediction on a
   zero-terminal-SNR schedule, as the image model). Captions are dropped 10% of the time so that
   classifier-free guidance and negative prompts work.
The vocoder has no weights to learn: Griffin-Lim inverts the mel at inference.
Speech clips ("a voice saying seven") are rendered by espeak-ng (apt-get install espeak-ng).
`--precision bf16` runs the forward passes in bf16 autocast, as train_image.py does (on CPUs with avx512_bf16).
"""

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from sounds import PITCHES, RATES, VOCABULARY, VOICES, sample  # noqa: E402
from tokenizer import build_tokenizer  # noqa: E402
from train_image import autocast, cosine_lr, log, make_text_encoder, update  # noqa: E402

from pipelines.mel_diffusion import GriffinLimVocoder, MelDiffusionPipeline  # noqa: E402

FRAMES = 128  # frames of the training crops (2.048 s at hop 256)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "models" / "tiny-sounds-audio"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-clips", type=int, default=8000)  # rendered once; captions re-dropped each epoch
    p.add_argument("--steps", type=int, default=2400)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=("bf16", "fp32"), default="fp32",
                   help="bf16: forward passes under torch.autocast (weights, optimiser and loss stay fp32); faster "
                        "only on CPUs with avx512_bf16: on a 2-core CPU without AVX-512 its first steps took "
                        "several times longer than fp32's")
    p.add_argument("--snr-gamma", type=float, default=5.0,
                   help="Min-SNR loss weighting (Hang et al. 2023) in its v-prediction form, as diffusers' training "
                        "scripts: min(SNR + 1, gamma) / (SNR + 1), so the easy, nearly clean timesteps stop dominating "
                        "(weight 1 wherever SNR + 1 <= gamma, the pure-noise end included); 0 turns it off")
    p.add_argument("--snapshot-every", type=int, default=0)  # save <out>-snapshot every N steps (0: never)
    return p.parse_args()


PATCH = 4  # the mel is cut into 4x4 patches: the UNet sees 16 channels on a 32 x 16 grid


def make_unet(n_mels: int) -> UNet2DConditionModel:
    """UNet over mel patches; on 32 x 16 it trains 8x faster than on the 128 x 64 mel itself."""
    return UNet2DConditionModel(
        sample_size=(FRAMES // PATCH, n_mels // PATCH), in_channels=PATCH**2, out_channels=PATCH**2,
        layers_per_block=1, block_out_channels=(64, 128, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=32,
    )


def save_pipeline(out, tokenizer, text_encoder, unet, noise_scheduler, vocoder) -> None:
    """Save the MelDiffusionPipeline folder: fp16 safetensors (loaded back as fp32 on the CPU)."""
    scheduler = DDIMScheduler.from_config(noise_scheduler.config, timestep_spacing="trailing", clip_sample=False,
                                          set_alpha_to_one=False, steps_offset=1)
    pipe = MelDiffusionPipeline(tokenizer=tokenizer, text_encoder=copy.deepcopy(text_encoder),
                                unet=copy.deepcopy(unet), scheduler=scheduler, vocoder=vocoder, patch_size=PATCH)
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    # 1. Data: render the clips once, keep their mels and scenes (captions are re-drawn per step).
    vocoder = GriffinLimVocoder()
    log(f"rendering {args.num_clips} clips")
    mels, scenes = [], []
    for _ in range(args.num_clips):
        audio, scene = sample(rng)
        mels.append(vocoder.encode(torch.from_numpy(audio)[None])[0, :FRAMES])
        scenes.append(scene)
    mels = torch.nn.functional.pixel_unshuffle(torch.stack(mels)[:, None], PATCH)  # N, 16, 32, 16 in [-1, 1]
    log(f"mel patches {tuple(mels.shape)}, mean {mels.mean():.3f}, std {mels.std():.3f}")

    # 2. Text encoder + UNet, trained together with v-prediction on a zero-terminal-SNR schedule.
    tokenizer = build_tokenizer(VOCABULARY)
    text_encoder = make_text_encoder(len(tokenizer))
    unet = make_unet(vocoder.config.n_mels)
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        prediction_type="v_prediction", rescale_betas_zero_snr=True,
    )
    snr = noise_scheduler.alphas_cumprod / (1 - noise_scheduler.alphas_cumprod)  # per timestep; 0 at t = 999
    snr_weight = (snr + 1).clamp(max=args.snr_gamma) / (snr + 1)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)
    ema_unet, ema_text = copy.deepcopy(unet).requires_grad_(False), copy.deepcopy(text_encoder).requires_grad_(False)
    caption_rng = random.Random(args.seed + 1)

    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, 5e-4)
        idx = torch.randint(0, len(mels), (args.batch_size,))
        x0 = mels[idx]
        captions = ["" if caption_rng.random() < 0.1 else scenes[i].caption() for i in idx.tolist()]
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (len(x0),))
        with autocast(args.precision):
            pred = unet(noise_scheduler.add_noise(x0, noise, t), t, text_encoder(ids)[0]).sample
        loss = F.mse_loss(pred.float(), noise_scheduler.get_velocity(x0, noise, t), reduction="none").mean((1, 2, 3))
        loss = (loss * snr_weight[t]).mean() if args.snr_gamma else loss.mean()
        update(opt, params, loss, ((ema_unet, unet), (ema_text, text_encoder)), step)
        if args.snapshot_every and step and step % args.snapshot_every == 0:  # to listen to while it trains
            save_pipeline(args.out + "-snapshot", tokenizer, ema_text, ema_unet, noise_scheduler, vocoder)
            Path(args.out + "-snapshot", "training_info.json").write_text(json.dumps({"vocabulary": VOCABULARY}))
        if step % 50 == 0 or step == args.steps - 1:
            log(f"step {step} loss {loss.item():.4f} elapsed {(time.time() - t0) / 60:.1f} min")

    # 3. Save the pipeline folder and what it was trained on.
    save_pipeline(args.out, tokenizer, ema_text, ema_unet, noise_scheduler, vocoder)
    info = {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "num_clips": args.num_clips,
            "precision": args.precision, "snr_gamma": args.snr_gamma, "espeak_voices": list(VOICES), "espeak_rates": list(RATES),
            "espeak_pitches": list(PITCHES), "minutes": round((time.time() - t0) / 60, 1), "vocabulary": VOCABULARY}
    Path(args.out, "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"saved {args.out} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
