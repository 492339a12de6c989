"""Text-to-audio: AudioLDM / AudioLDM 2 (Hub) or the bundled tiny mel-spectrogram model, as a stream of
denoising steps; each preview is the predicted clean mel spectrogram, as an image.

The bundled model is a `MelDiffusionPipeline` (below): AudioLDM's recipe without the VAE. Its UNet
denoises the log-mel spectrogram itself, laid out as AudioLDM's latents are (batch, 1, frames,
mels), and a `GriffinLimVocoder` turns the mel into a waveform. Both are ordinary diffusers classes
(`DiffusionPipeline`, `ModelMixin`), saved and loaded with `save_pretrained` / `from_pretrained`.
"""

import io
import json
import math
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.pipelines.pipeline_utils import AudioPipelineOutput
from PIL import Image

from .base import (MAX_PROMPT_CHARS, AudioOutput, Step, Timer, check_range, check_seed, check_text, created_now,
                   stream_steps)
from .diffusion import DiffusionModel, denoise, generator_for
from .recipe import info_chunk, recipe_text


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, each peaking at 1."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    points = 700 * (10 ** (torch.linspace(mel(f_min), mel(f_max), n_mels + 2, dtype=torch.float64) / 2595) - 1)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = points[:-2, None], points[1:-1, None], points[2:, None]
    return torch.clamp(torch.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), min=0).float()


class GriffinLimVocoder(ModelMixin, ConfigMixin):
    """Log-mel spectrogram <-> waveform, with no learned weights: `encode` is the analysis the model
    was trained on, `forward` inverts it (least-squares mel inversion, then fast Griffin-Lim).

    Mels are scaled to [-1, 1]: `db_min` dB maps to -1 and `db_max` dB to 1, the range the UNet sees.
    """

    @register_to_config
    def __init__(self, sampling_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float = 8000.0, db_min: float = -50.0, db_max: float = 50.0,
                 n_iter: int = 32, momentum: float = 0.99):
        super().__init__()
        fb = mel_filterbank(sampling_rate, n_fft, n_mels, f_min, f_max)
        self.register_buffer("mel_basis", fb)  # saved, so the folder says exactly what a mel bin is
        self.register_buffer("inverse_basis", torch.linalg.pinv(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.stft(audio, self.config.n_fft, self.config.hop_length, window=self.window.float(), return_complex=True)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) waveform -> (batch, frames, n_mels) scaled log-mel in [-1, 1]."""
        power = self._stft(audio.float()).abs() ** 2  # (batch, freq, frames)
        db = 10 * torch.log10(self.mel_basis.float() @ power + 1e-10)
        c = self.config
        return ((db - c.db_min) / (c.db_max - c.db_min) * 2 - 1).clamp(-1, 1).transpose(1, 2)

    @torch.no_grad()
    def forward(self, mel: torch.Tensor, num_samples: int | None = None, generator: torch.Generator | None = None):
        """(batch, frames, n_mels) scaled log-mel -> (batch, samples) waveform."""
        c = self.config
        db = (mel.float().clamp(-1, 1).transpose(1, 2) + 1) / 2 * (c.db_max - c.db_min) + c.db_min
        power = (self.inverse_basis.float() @ 10 ** (db / 10)).clamp(min=0)  # always in float32
        magnitude = power.sqrt()  # (batch, freq, frames)
        length = (magnitude.shape[-1] - 1) * c.hop_length  # what these frames span; trimmed at the end
        # Fast Griffin-Lim (Perraudin et al. 2013, as torchaudio's): start from random phase and
        # alternate between the magnitude we want and a consistent spectrogram, with momentum.
        angles = torch.rand(magnitude.shape, generator=generator, device="cpu").to(magnitude.device) * 2 * math.pi
        angles = torch.polar(torch.ones_like(magnitude), angles)
        previous = torch.zeros_like(angles)
        for _ in range(c.n_iter):
            audio = torch.istft(magnitude * angles, c.n_fft, c.hop_length, window=self.window.float(), length=length)
            rebuilt = self._stft(audio)
            angles = rebuilt - c.momentum / (1 + c.momentum) * previous
            angles = angles / angles.abs().clamp(min=1e-16)
            previous = rebuilt
        audio = torch.istft(magnitude * angles, c.n_fft, c.hop_length, window=self.window.float(), length=length)
        return audio if num_samples is None else torch.nn.functional.pad(audio, (0, max(0, num_samples - length)))[..., :num_samples]


class MelDiffusionPipeline(DiffusionPipeline):
    """Text-to-audio by denoising a log-mel spectrogram, then a vocoder: AudioLDM without the VAE.

    Components: `tokenizer` + `text_encoder` (CLIP), `unet` (`UNet2DConditionModel`, cross-attention
    on the text), `scheduler`, `vocoder` (`GriffinLimVocoder`). Instead of a learned VAE, the mel is
    cut into `patch_size` x `patch_size` patches stacked as channels (a lossless pixel-unshuffle), so
    the UNet works on a 16x smaller grid. Called like `AudioLDMPipeline`: prompt, audio_length_in_s,
    num_inference_steps, guidance_scale, negative_prompt, generator, callback_on_step_end; returns
    `AudioPipelineOutput(audios=...)`.
    """

    model_cpu_offload_seq = "text_encoder->unet"
    _callback_tensor_inputs = ["latents"]

    def __init__(self, tokenizer, text_encoder, unet, scheduler, vocoder: GriffinLimVocoder, patch_size: int = 4):
        super().__init__()
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
                              vocoder=vocoder)
        self.register_to_config(patch_size=patch_size)

    @property
    def interrupt(self) -> bool:
        return getattr(self, "_interrupt", False)

    def mel_to_latents(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, 1, frames, mels) -> (batch, patch**2, frames / patch, mels / patch)."""
        return torch.nn.functional.pixel_unshuffle(mel, self.config.patch_size)

    def latents_to_mel(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pixel_shuffle(latents, self.config.patch_size)

    def encode_prompt(self, prompt: str, negative_prompt: str | None, guidance: bool) -> torch.Tensor:
        texts = [negative_prompt or "", prompt] if guidance else [prompt]
        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True,
                             return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0]

    @torch.no_grad()
    def __call__(self, prompt: str, audio_length_in_s: float = 2.0, num_inference_steps: int = 25,
                 guidance_scale: float = 3.0, negative_prompt: str | None = None,
                 generator: torch.Generator | None = None, latents: torch.Tensor | None = None,
                 output_type: str = "np", return_dict: bool = True, callback_on_step_end: Callable | None = None):
        # 1. Prompt embeddings (unconditional first when guiding, as in diffusers' pipelines).
        guidance = guidance_scale > 1.0
        embeddings = self.encode_prompt(prompt, negative_prompt, guidance)
        # 2. Start from noise: enough frames for the clip, rounded up so the UNet can halve them.
        voc, patch = self.vocoder.config, self.config.patch_size
        num_samples = int(round(audio_length_in_s * voc.sampling_rate))
        multiple = patch * 2 ** (len(self.unet.config.block_out_channels) - 1)
        frames = math.ceil((num_samples // voc.hop_length + 1) / multiple) * multiple
        shape = (1, self.unet.config.in_channels, frames // patch, voc.n_mels // patch)
        if latents is None:
            latents = torch.randn(shape, generator=generator, device="cpu", dtype=self.unet.dtype).to(self.device)
        latents = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        # 3. Denoise.
        self._interrupt = False
        for i, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            if self.interrupt:
                break
            model_input = torch.cat([latents] * 2) if guidance else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            pred = self.unet(model_input, t, encoder_hidden_states=embeddings).sample
            if guidance:
                uncond, cond = pred.chunk(2)
                pred = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(pred, t, latents, generator=generator).prev_sample
            if callback_on_step_end is not None:
                outputs = callback_on_step_end(self, i, t, {"latents": latents})
                latents = outputs.pop("latents", latents)
        # 4. Mel -> waveform.
        if output_type == "latent":
            audio = latents
        else:
            mel = self.latents_to_mel(latents)[:, 0].float()
            audio = self.vocoder(mel, num_samples, generator=generator).cpu()
            audio = audio.numpy() if output_type == "np" else audio
        self.maybe_free_model_hooks()
        return AudioPipelineOutput(audios=audio) if return_dict else (audio,)


class AudioPipeline(DiffusionModel):
    task = "audio"

    def load(self, path: str):
        """The bundled mel model through its own class; AudioLDM (2) and others through DiffusionPipeline."""
        index = Path(path) / "model_index.json"
        if index.exists() and json.loads(index.read_text()).get("_class_name") == MelDiffusionPipeline.__name__:
            return MelDiffusionPipeline.from_pretrained(path, dtype=self.dtype)
        return super().load(path)

    def check_inputs(self, prompt, negative_prompt, duration_s, num_inference_steps, guidance_scale, seed) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        check_text("negative_prompt", negative_prompt, MAX_PROMPT_CHARS, optional=True)
        check_range("duration_s", duration_s, *self.limit("duration_s", (1.0, 10.0)))
        check_range("num_inference_steps", num_inference_steps, *self.limit("num_inference_steps", (1, 200)), integer=True)
        check_range("guidance_scale", guidance_scale, 0.0, 20.0)
        check_seed(seed)

    def stream(self, prompt: str, negative_prompt: str = "", duration_s: float | None = None,
               num_inference_steps: int | None = None, guidance_scale: float | None = None, seed: int = 0,
               preview: bool = True) -> Iterator[Step | AudioOutput]:
        """Yield one Step per denoising iteration (preview: the predicted mel spectrogram), then an AudioOutput."""
        d = self.spec.defaults
        duration_s = d.get("duration_s", 5.0) if duration_s is None else duration_s
        num_inference_steps = d.get("num_inference_steps", 25) if num_inference_steps is None else num_inference_steps
        guidance_scale = d.get("guidance_scale", 3.0) if guidance_scale is None else guidance_scale
        self.check_inputs(prompt, negative_prompt, duration_s, num_inference_steps, guidance_scale, seed)

        def work(emit):
            pipe = self.pipe  # loads on first use; not counted in the timings
            timer = Timer()
            kwargs = dict(prompt=prompt.strip(), audio_length_in_s=float(duration_s), num_inference_steps=int(num_inference_steps),
                          guidance_scale=float(guidance_scale), generator=generator_for(int(seed)))
            if negative_prompt and negative_prompt.strip() and guidance_scale > 1:
                kwargs["negative_prompt"] = negative_prompt.strip()
            decode = (lambda x0: self.decode_preview(pipe, x0)) if preview else None
            output, steps = denoise(pipe, kwargs, emit, int(num_inference_steps), decode, timer)
            audio = np.asarray(output.audios[0], dtype=np.float32).reshape(-1)
            recipe = recipe_text("audio", prompt.strip(), (negative_prompt or "").strip(),
                                 num_inference_steps=int(num_inference_steps), guidance_scale=float(guidance_scale),
                                 seed=int(seed), duration_s=float(duration_s), model=self.spec.model_id)
            return AudioOutput(sample_rate=sample_rate(pipe), audio=audio, seed=int(seed), seconds=timer(), steps=steps,
                               recipe=recipe)

        return stream_steps(work, self.lock, cpu=self.device == "cpu")

    @staticmethod
    @torch.no_grad()
    def decode_preview(pipe, x0: torch.Tensor):
        """The predicted clean mel spectrogram (frequency up, time right) as a colour image."""
        if x0.ndim != 4:
            return None
        vae = getattr(pipe, "vae", None)
        if vae is not None:  # AudioLDM: latents -> mel through the VAE
            mel = vae.decode(x0 / vae.config.scaling_factor).sample
        else:  # the bundled model: patches -> mel
            mel = pipe.latents_to_mel(x0) if hasattr(pipe, "latents_to_mel") else x0
        return spectrogram_image(mel[0, 0].float().cpu().numpy().T)


def sample_rate(pipe) -> int:
    vocoder = getattr(pipe, "vocoder", None)
    if vocoder is not None and hasattr(vocoder, "config"):
        return int(vocoder.config.sampling_rate)
    return int(getattr(pipe.config, "sample_rate", 16000))


def spectrogram_image(mel: np.ndarray, height: int = 160) -> Image.Image:
    """(n_mels, frames) log-mel values -> an RGB image, low frequencies at the bottom ("magma"-like map)."""
    lo, hi = np.percentile(mel, 2), np.percentile(mel, 99.5)
    x = np.clip((mel - lo) / max(hi - lo, 1e-6), 0, 1)[::-1]
    rgb = np.stack([np.clip(1.6 * x, 0, 1), np.clip(1.6 * x - 0.6, 0, 1) ** 1.2, np.clip(0.5 + 0.5 * np.sin(3.2 * x + 0.3), 0, 1) * x], -1)
    img = Image.fromarray((rgb * 255).astype(np.uint8))
    return img.resize((max(img.width * 2, 256), height), Image.BILINEAR)


def log_mel(audio: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """A log-mel spectrogram (n_mels, frames) of a waveform, for display (numpy only)."""
    n_fft, hop = 1024, 256
    audio = np.pad(audio.astype(np.float32), (n_fft // 2, n_fft // 2))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel_f = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + sample_rate / 2 / 700), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    fb = np.maximum(0, np.minimum((bins[None] - mel_f[:-2, None]) / (mel_f[1:-1, None] - mel_f[:-2, None]),
                                  (mel_f[2:, None] - bins[None]) / (mel_f[2:, None] - mel_f[1:-1, None])))
    return np.log10(power @ fb.T + 1e-8).T


def wav_bytes(audio: np.ndarray, sample_rate: int, title: str = "", comment: str = "") -> bytes:
    """16-bit PCM WAV of a float waveform (peak-normalised to -1 dBFS if it clips), with an INFO chunk carrying
    `title` and `comment` (the recipe) when given."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.891:
        audio = audio * (0.891 / peak)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    data, info = buf.getvalue(), info_chunk(title, comment, created_now())
    return data[:4] + (len(data) - 8 + len(info)).to_bytes(4, "little") + data[8:] + info  # RIFF size covers it


def render_clip(audio: np.ndarray, sample_rate: int, recipe: str = "") -> tuple[bytes, Image.Image]:
    """What the Audio tab shows for a finished clip: (WAV bytes carrying the recipe, log-mel spectrogram image).
    gr.Audio draws the waveform itself."""
    title = recipe.split("\n", 1)[0] if recipe else ""
    return wav_bytes(audio, sample_rate, title, recipe), spectrogram_image(log_mel(audio, sample_rate))
