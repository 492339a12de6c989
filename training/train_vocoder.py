"""Train the bundled audio model's learned vocoder on this project's procedural clips: an `IstftVocoder`
(pipelines/mel_diffusion.py: Vocos-like, ConvNeXt at the mel's frame rate, then an inverse STFT) by default, or
transformers' `SpeechT5HifiGan` (the class AudioLDM 2 hands its mel to) with `--arch hifigan`.

    python training/train_vocoder.py        # renders its clips (20 s), then trains 55 minutes at most; seeded
    python training/train_vocoder.py --save-data .vocdata/clips.npz --steps 0      # render the clips only
    python training/train_vocoder.py --num-clips 780 --data .vocdata/clips.npz --device cuda --batch-size 32 \
        --steps 200000 --max-minutes 6.5                                            # the bundled vocoder's run (H200)

The bundled one: 11,415 steps of 32 segments in 6.5 minutes on an H200 (training_info.json; the first 780 of the
clips above, as --num-clips 780 renders them). On 2 quiet CPU cores the default command ran 31,179 steps of 8 in
its 55 minutes (0.106 s a step): about two thirds of the GPU run's segments. README: "The vocoder" has the
measures of both (training/eval_vocoder.py).

Why not SpeechT5HifiGan, the class the issue named: a small one (0.9 M parameters, upsampling 8 x 8 x 4) trained
3.5 minutes on an H200 (6,763 steps of 32 segments; waveform losses, with a lower magnitude floor) kept no pure
tone's pitch (110-2637 Hz: 3 of 9 within a semitone; a frame-rate buzz at multiples of 62.5 Hz) and recognised 42 %
of held-out words against Griffin-Lim's 88 %. Without a discriminator, a HiFi-GAN learns a sinusoid's phase slowly.
The frame-rate vocoder costs about 1/13 of its compute per step; it predicts each STFT bin's log-magnitude as a
correction to Griffin-Lim's own estimate (the least-squares inverse of the mel filters) and its phase turn per frame
(its instantaneous frequency, summed over time: a steady tone is one coherent sinusoid). Its output layer starts at
zero, so step 0 is already that estimate with coherent phases, and training adds what Griffin-Lim cannot.

1. Clips: 2-second sounds from training/sounds.py as the audio model learns them, plus spoken words and phrases
   from espeak-ng in more voices, rates and pitches than the audio model heard (VOICES); the voices in
   HELD_OUT_VOICES and the rates outside RATES are never used here, so that training/eval_vocoder.py can
   measure the vocoder on speech it has not heard.
2. Each step takes random 8192-sample segments (a random gain, sometimes two clips mixed; --tones of them replaced by
   sinusoids at random pitches), computes their mel exactly as the pipeline does (`LogMel`: the Griffin-Lim vocoder's
   `encode`, whose config it reads from the model folder), and trains the vocoder to give back the waveform:
   multi-resolution STFT loss (spectral convergence + log magnitude, at 256..2048-point FFTs) + mel L1, and, for the
   IstftVocoder, its spectrum supervised directly as APNet does (Ai & Ling 2023): each bin's log-magnitude against
   the target STFT's, and its phase turn against the target's instantaneous frequency, weighted by loudness
   (`spectrum_losses`). Without that, the waveform losses alone left a pure tone's pitch worse after training than
   before (5 of 9 within a semitone, against 9 of 9 with it). No discriminator.
3. Saves with `save_pretrained` (safetensors) and `training_info.json` (seed, steps, minutes, device, losses).
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
from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))

SEGMENT_FRAMES = 32  # a training segment: 32 mel frames = 8192 samples (HiFi-GAN's segment length)
# espeak-ng voices for the vocoder's speech: the audio model's three accents, more accents, and espeak's voice variants
# (+f: female, +m: male timbres). Never used here, kept for measuring: HELD_OUT_VOICES, and rates outside RATES.
VOICES = ("en-us", "en-gb", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us+f3", "en-gb+f2",
          "en-us+m3", "en+f4", "en-gb-x-rp+m5", "en-us+klatt")
HELD_OUT_VOICES = ("en-029", "en-gb-scotland", "en-us+f5")
RATES = (130, 195)
PITCHES = (25, 75)
PHRASES = ("hello there", "the quick brown fox", "diffusion makes sound", "a tiny vocoder", "good morning",
           "what time is it", "music and speech", "one two three four")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="/tmp/tiny-sounds-vocoder")  # training/eval_vocoder.py --vocoder measures it
    p.add_argument("--mel-config", help="the GriffinLimVocoder config that defines the mel (sample rate, n_fft, hop, mels, "
                                        "dB range); default: the bundled audio model's (griffin_lim/, else vocoder/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-clips", type=int, default=1000)  # 2.048 s each; 66 MB as int16, 24 MB as .npz
    p.add_argument("--data", help="clips rendered before (--save-data): int16 (clips, samples) in a .npy or .npz")
    p.add_argument("--save-data", help="write the rendered clips here (int16 .npy, or compressed .npz) and go on")
    p.add_argument("--steps", type=int, default=40000)  # at most; --max-minutes cuts it (0.1 s a step on 2 quiet cores)
    p.add_argument("--max-minutes", type=float, default=55.0,
                   help="fit the run into this many minutes: from step 35 on, every 25 steps, --steps is cut to what "
                        "fits at the speed so far and the learning-rate schedule follows (0: no limit; training_info.json "
                        "records the steps run, which --steps N --max-minutes 0 repeats exactly)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--arch", choices=("istft", "hifigan"), default="istft",
                   help="istft: IstftVocoder (pipelines/mel_diffusion.py; Vocos-like, at the frame rate); hifigan: "
                        "transformers' SpeechT5HifiGan (AudioLDM 2's class; see the docstring for why it is not the default)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--phase-weight", type=float, default=1.0,
                   help="istft: weight of the direct instantaneous-frequency loss (0: the waveform losses alone, as before)")
    p.add_argument("--rough", type=float, default=0.0,
                   help="share of mels given patch-shaped errors like the audio model's (the target stays clean)")
    p.add_argument("--tones", type=float, default=0.15,
                   help="share of segments replaced by 1-3 steady or gliding sinusoids at random pitches (60-4000 Hz)")
    p.add_argument("--init", help="a saved SpeechT5HifiGan folder to go on training from (default: a new one)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--snapshot-every", type=int, default=0)  # save <out>-snapshot every N steps (0: never)
    return p.parse_args()


def vocoder_config(mel: dict) -> SpeechT5HifiGanConfig:
    """A small HiFi-GAN (V2-like, 0.9 M parameters): upsampling 8 x 8 x 4 = the mel's hop of 256 samples."""
    rates = (8, 8, 4)
    assert math.prod(rates) == mel["hop_length"], "the upsampling must make one hop of samples per mel frame"
    return SpeechT5HifiGanConfig(
        model_in_dim=mel["n_mels"], sampling_rate=mel["sampling_rate"], upsample_initial_channel=128,
        upsample_rates=list(rates), upsample_kernel_sizes=[2 * r for r in rates], resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5]] * 3, normalize_before=False,  # the mel is already scaled to [-1, 1]
    )


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


class LogMel(torch.nn.Module):
    """The pipeline's mel, in torch alone (the GPU machine has no torchaudio): GriffinLimVocoder.encode's power
    spectrogram (centred, reflect-padded Hann STFT), HTK triangular filters peaking at 1 (torchaudio's
    melscale_fbanks, copied), dB, then [db_min, db_max] -> [-1, 1]. tests/test_vocoder.py checks it is `encode`."""

    def __init__(self, mel: dict):
        super().__init__()
        self.c = mel
        n_freqs = mel["n_fft"] // 2 + 1
        all_freqs = np.linspace(0, mel["sampling_rate"] // 2, n_freqs)
        m_pts = np.linspace(hz_to_mel(mel["f_min"]), hz_to_mel(mel["f_max"]), mel["n_mels"] + 2)
        f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
        f_diff, slopes = f_pts[1:] - f_pts[:-1], f_pts[None, :] - all_freqs[:, None]
        down, up = -slopes[:, :-2] / f_diff[:-1], slopes[:, 2:] / f_diff[1:]
        fb = np.maximum(0.0, np.minimum(down, up))  # (n_freqs, n_mels)
        self.register_buffer("basis", torch.from_numpy(fb).float())
        self.register_buffer("window", torch.hann_window(mel["n_fft"]))

    def power(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, n_mels) mel power."""
        spec = torch.stft(audio.float(), self.c["n_fft"], self.c["hop_length"], self.c["n_fft"], self.window,
                          center=True, pad_mode="reflect", return_complex=True).abs() ** 2
        return spec.transpose(1, 2) @ self.basis

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(self.power(audio).clamp(min=1e-10))
        return ((db - self.c["db_min"]) / (self.c["db_max"] - self.c["db_min"]) * 2 - 1).clamp(-1, 1)


def stft_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss (Yamamoto et al. 2020): spectral convergence + log-magnitude L1, averaged."""
    total = 0.0
    sizes = ((2048, 512), (1024, 256), (512, 128), (256, 64))
    for n_fft, hop in sizes:
        window = torch.hann_window(n_fft, device=y.device)
        # Magnitudes floored at sqrt(1e-7) as in ParallelWaveGAN's loss: lower, the log term's gradient (1 / |S|) in
        # silences dwarfs the sounds' and the run goes unstable (an earlier floor of 1e-7 spiked and kept pitch wrong).
        s_hat = torch.stft(y_hat, n_fft, hop, n_fft, window, return_complex=True).abs().clamp(min=3e-4)
        s = torch.stft(y, n_fft, hop, n_fft, window, return_complex=True).abs().clamp(min=3e-4)
        total = total + torch.linalg.norm(s - s_hat) / torch.linalg.norm(s).clamp(min=1.0)  # a silent batch: no blow-up
        total = total + F.l1_loss(torch.log(s_hat), torch.log(s))
    return total / len(sizes)


def render_clips(n: int, seed: int, sample_rate: int) -> np.ndarray:
    """(n, 32768) int16: 65 % the audio model's own scenes (sounds.sample), 35 % a word or phrase in a VOICE."""
    import sounds  # numpy + soundfile + espeak-ng: only where clips are rendered

    assert sample_rate == sounds.SAMPLE_RATE
    rng = random.Random(seed)
    length = int(sounds.SAMPLE_RATE * sounds.DURATION_S)
    out = np.zeros((n, length), np.int16)
    for i in range(n):
        if rng.random() < 0.35:
            text = rng.choice(sounds.WORDS + PHRASES)
            x = sounds.speak(text, rng.choice(VOICES), rng.randint(*RATES), rng.randint(*PITCHES))[:length - 1600]
            clip = np.zeros(length)
            start = rng.randint(0, length - len(x))
            clip[start:start + len(x)] = x * rng.uniform(0.5, 0.8)
        else:
            clip, _ = sounds.sample(rng)
        out[i] = np.round(np.clip(clip, -1, 1) * 32767).astype(np.int16)
    return out


def batch(clips: torch.Tensor, size: int, segment: int, gen: torch.Generator) -> torch.Tensor:
    """`size` random segments, each at a random gain (-24..+2 dB), a quarter of them with a second clip mixed in."""
    device = clips.device
    n, length = clips.shape
    starts = torch.randint(0, length - segment, (2, size), generator=gen)
    rows = torch.randint(0, n, (2, size), generator=gen)
    idx = starts[..., None] + torch.arange(segment)
    x = clips[rows[..., None].to(device), idx.to(device)].float() / 32767.0  # (2, size, segment)
    mix = (torch.rand(size, generator=gen) < 0.25).float().to(device)[:, None]
    y = x[0] + mix * x[1] * torch.rand(size, 1, generator=gen).to(device)
    y = y / y.abs().amax(1, keepdim=True).clamp(min=1e-4) * x[0].abs().amax(1, keepdim=True).clamp(max=0.8)
    gain = 10 ** (torch.empty(size, 1).uniform_(-24, 2, generator=gen) / 20).to(device)
    return (y * gain).clamp(-0.99, 0.99)


def with_tones(y: torch.Tensor, share: float, sample_rate: int, gen: torch.Generator) -> torch.Tensor:
    """Replace about `share` of the segments with 1-3 sinusoids at pitches drawn log-uniformly from 60-4000 Hz (each
    steady or gliding up to half an octave), at the segment's own loudness: pitch anywhere, not just on the sounds'
    notes, so that the vocoder learns a tone's frequency from the mel rather than the training set's notes."""
    size, n = y.shape
    chosen = torch.rand(size, generator=gen) < share
    if not chosen.any():
        return y
    k = int(chosen.sum())
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    tones = torch.zeros(k, n, dtype=torch.float64)
    for voice in range(3):
        present = (torch.rand(k, 1, generator=gen) < (1.0 if voice == 0 else 0.4)).double()
        f0 = 60 * (4000 / 60) ** torch.rand(k, 1, generator=gen, dtype=torch.float64)
        glide = torch.where(torch.rand(k, 1, generator=gen) < 0.3,
                            torch.empty(k, 1, dtype=torch.float64).uniform_(-0.5, 0.5, generator=gen),
                            torch.zeros(k, 1, dtype=torch.float64))  # octaves over the segment
        rate = glide * math.log(2) / t[-1]  # f(t) = f0 * exp(rate * t)
        phase = 2 * math.pi * f0 * torch.where(rate.abs() > 0, torch.expm1(rate * t) / rate.where(rate != 0, 1.0), t)
        phase = phase + 2 * math.pi * torch.rand(k, 1, generator=gen, dtype=torch.float64)
        tones += present * torch.rand(k, 1, generator=gen, dtype=torch.float64).clamp(min=0.2) * torch.sin(phase)
    tones = tones / tones.abs().amax(1, keepdim=True).clamp(min=1e-6)
    level = y[chosen].abs().amax(1, keepdim=True).clamp(min=0.05)
    y = y.clone()
    y[chosen] = (tones.float().to(y.device) * level).clamp(-0.99, 0.99)
    return y


def make_vocoder(arch: str, mel: dict, init: str | None = None):
    if arch == "hifigan":
        return SpeechT5HifiGan.from_pretrained(init) if init else SpeechT5HifiGan(vocoder_config(mel))
    sys.path.insert(0, str(ROOT))
    from pipelines.mel_diffusion import IstftVocoder  # diffusers: not on the GPU machine, which trained the HiFi-GAN

    if init:
        return IstftVocoder.from_pretrained(init, torch_dtype=torch.float32)
    return IstftVocoder(**{k: mel[k] for k in ("sampling_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max",
                                                "db_min", "db_max")})


def wrap(x: torch.Tensor) -> torch.Tensor:
    """An angle's distance from 0 the short way round, in (-pi, pi] (APNet's anti-wrapping function, signed)."""
    return x - 2 * math.pi * torch.round(x / (2 * math.pi))


def spectrum_losses(model, mel: torch.Tensor, y: torch.Tensor, floor: float = 1e-3) -> dict:
    """The frame-rate vocoder's spectrum supervised directly, as APNet does (Ai & Ling 2023) instead of only through
    the waveform: each bin's log-magnitude against the target STFT's (L1, both floored at -60 dB of full scale), and
    its phase turn per frame against the target's instantaneous frequency, the short way round the circle, weighted
    by the bin's loudness (a silent bin's phase is noise). A waveform loss alone teaches phase slowly: the previous
    runs kept a pure tone's pitch worse after training than before (5/9 against 9/9 within a semitone)."""
    c = model.config
    log_mag, turn = model.spectrum(mel)  # (batch, bins, frames)
    target = torch.stft(y, c.n_fft, c.hop_length, c.n_fft, torch.hann_window(c.n_fft, device=y.device), center=True,
                        pad_mode="reflect", return_complex=True)
    magnitude = target.abs()
    amp = F.l1_loss(log_mag.clamp(min=math.log(floor)), torch.log(magnitude.clamp(min=floor)))
    bins = torch.arange(target.shape[1], device=y.device, dtype=torch.float32)[:, None]
    true_turn = wrap(torch.angle(target[..., 1:]) - torch.angle(target[..., :-1]) - bins * (2 * math.pi * c.hop_length / c.n_fft))
    weight = torch.sqrt(magnitude[..., 1:] * magnitude[..., :-1])
    weight = weight / weight.sum(dim=(1, 2), keepdim=True).clamp(min=1e-8)
    phase = (weight * wrap(turn[..., 1:] - true_turn).abs()).sum(dim=(1, 2)).mean()
    return {"amp": amp, "phase": phase}


def roughen(mel: torch.Tensor, share: float, gen: torch.Generator, patch: int = 4, most: float = 0.06) -> torch.Tensor:
    """About `share` of the mels with the kind of error the audio model makes: it denoises the mel in `patch` x `patch`
    patches, so its mistakes come in blocks. Noise constant over each patch (up to `most` of the [-1, 1] range, 3 dB
    at 0.06) plus finer noise half that, on a random grid offset; the target stays the clean waveform, so the vocoder
    learns to render a generated mel as the sound it stands for rather than its blemishes."""
    b, frames, n_mels = mel.shape
    chosen = (torch.rand(b, 1, 1, generator=gen) < share).float()
    sigma = torch.rand(b, 1, 1, generator=gen) * most * chosen
    blocks = torch.randn(b, frames // patch + 2, n_mels // patch + 2, generator=gen)
    blocks = blocks.repeat_interleave(patch, 1).repeat_interleave(patch, 2)
    dt, dm = (int(torch.randint(0, patch, (1,), generator=gen)) for _ in range(2))
    noise = blocks[:, dt:dt + frames, dm:dm + n_mels] + 0.5 * torch.randn(b, frames, n_mels, generator=gen)
    return (mel + (sigma * noise).to(mel.device)).clamp(-1, 1)


def losses(model, to_mel: LogMel, y: torch.Tensor, arch: str = "istft", phase_weight: float = 1.0,
           rough: float = 0.0, gen: torch.Generator | None = None) -> dict:
    """HiFi-GAN makes one hop of samples per frame; the inverse STFT, (frames - 1) hops from centred frames."""
    mel = to_mel(y)  # (batch, frames + 1, n_mels)
    if rough > 0:
        mel = roughen(mel, rough, gen)
    y_hat = model(mel[:, :SEGMENT_FRAMES] if arch == "hifigan" else mel)[..., :y.shape[-1]]
    stft = stft_loss(y_hat, y)
    mel_l1 = F.l1_loss(torch.log(to_mel.power(y_hat).clamp(min=1e-5)), torch.log(to_mel.power(y).clamp(min=1e-5)))
    parts = {"loss": stft + 0.5 * mel_l1, "stft": stft, "mel_l1": mel_l1}
    if arch == "istft" and phase_weight > 0:
        parts |= spectrum_losses(model, mel, y)
        parts["loss"] = parts["loss"] + parts["amp"] + phase_weight * parts["phase"]
    return parts


def weight_norm(model: torch.nn.Module, on: bool) -> None:
    """HiFi-GAN trains with weight normalisation on every convolution; it is folded back in before saving."""
    from torch.nn.utils import parametrize

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            if on:
                torch.nn.utils.parametrizations.weight_norm(m)
            elif parametrize.is_parametrized(m, "weight"):
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)


def save(model, arch: str, out: str) -> None:
    """safetensors via save_pretrained: the HiFi-GAN in float32 with its weight norm folded in; the frame-rate vocoder
    in float16, as the rest of the model folder (loaded back as float32 on the CPU)."""
    model = copy.deepcopy(model).to("cpu").eval()
    if arch == "hifigan":
        weight_norm(model, False)
        model.save_pretrained(out)
    else:
        model.to(torch.float16).save_pretrained(out, safe_serialization=True)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    model_dir = ROOT / "models" / "tiny-sounds-audio"
    mel_config = args.mel_config or next(str(p) for p in (model_dir / "griffin_lim" / "config.json",
                                                          model_dir / "vocoder" / "config.json") if p.exists())
    mel_cfg = {k: v for k, v in json.loads(Path(mel_config).read_text()).items() if not k.startswith("_")}
    assert "db_min" in mel_cfg, f"{mel_config} is not a GriffinLimVocoder config"

    # 1. Clips: rendered here (seeded), or loaded from --data.
    if args.data:
        clips = np.load(args.data)["clips"] if args.data.endswith(".npz") else np.load(args.data)
    else:
        log(f"rendering {args.num_clips} clips")
        clips = render_clips(args.num_clips, args.seed, mel_cfg["sampling_rate"])
    if args.save_data:
        Path(args.save_data).parent.mkdir(parents=True, exist_ok=True)
        if args.save_data.endswith(".npz"):  # zip-compressed: silences make it 2.7x smaller
            np.savez_compressed(args.save_data, clips=clips)
        else:
            np.save(args.save_data, clips)
        log(f"saved {clips.shape} clips to {args.save_data} ({Path(args.save_data).stat().st_size / 1e6:.1f} MB)")
    if args.steps == 0:
        return
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest convolutions
    clips = torch.from_numpy(clips).to(device)

    # 2. The generator, with weight norm, trained on segments' mels to give back their waveforms.
    model = make_vocoder(args.arch, mel_cfg, args.init)
    if args.arch == "hifigan":
        weight_norm(model, True)
    model.to(device).train()
    to_mel = LogMel(mel_cfg).to(device)
    log(f"{type(model).__name__}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters on {device}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    segment = SEGMENT_FRAMES * mel_cfg["hop_length"]
    steps, history, step_start = args.steps, [], None
    step = 0
    while step < steps:
        if step == 5:  # time from here: the first steps warm up kernels and caches
            step_start = time.time()
        if args.max_minutes and step >= 35 and step % 25 == 10:  # re-fit as the machine's speed changes
            per_step = (time.time() - step_start) / (step - 5)
            fits = max(int((args.max_minutes * 60 - (time.time() - t0)) / per_step) + step, step + 1)
            if fits < steps or steps != args.steps:
                if step == 35:
                    log(f"{per_step:.3f} s a step: {fits} steps fit in {args.max_minutes} min")
                steps = min(fits, args.steps)
        lr = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / steps))  # warm-up, cosine
        for g in opt.param_groups:
            g["lr"] = lr
        y = with_tones(batch(clips, args.batch_size, segment, gen), args.tones, mel_cfg["sampling_rate"], gen)
        parts = losses(model, to_mel, y, args.arch, args.phase_weight, args.rough, gen)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        history.append({k: v.item() for k, v in parts.items()})
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step} " + " ".join(f"{k} {v:.4f}" for k, v in history[-1].items())
                + f" elapsed {(time.time() - t0) / 60:.1f} min")
        step += 1
        if args.snapshot_every and step % args.snapshot_every == 0 and step < steps:  # to listen to while it trains
            save(model, args.arch, args.out + "-snapshot")
    per_step = (time.time() - step_start) / (steps - 5) if step_start and steps > 5 else None

    # 3. Save: weight norm folded in, safetensors, and what the run was.
    save(model, args.arch, args.out)
    last = history[-min(100, len(history)):]
    info = {"arch": args.arch, "class": type(model).__name__, "seed": args.seed, "steps": steps,
            "batch_size": args.batch_size, "phase_weight": args.phase_weight, "tones": args.tones,
            "rough": args.rough, "segment_samples": segment,
            "num_clips": int(clips.shape[0]), "lr": args.lr, "device": str(device),
            "minutes": round((time.time() - t0) / 60, 2), "seconds_per_step": per_step and round(per_step, 4),
            "losses": {k: round(float(np.mean([h[k] for h in last])), 4) for k in last[0]},
            "espeak_voices": list(VOICES), "espeak_rates": list(RATES), "espeak_pitches": list(PITCHES),
            "held_out_voices": list(HELD_OUT_VOICES), "mel": mel_cfg}
    Path(args.out, "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"saved {args.out} in {info['minutes']} min; last 100 steps: {info['losses']}")


if __name__ == "__main__":
    main()
