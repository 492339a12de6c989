"""Text-to-audio: AudioLDM / AudioLDM 2 (Hub) or the bundled tiny mel-spectrogram model, as a stream of
denoising steps; each preview is the predicted clean mel spectrogram, as an image.

The bundled model is a `MelDiffusionPipeline` (pipelines/mel_diffusion.py): AudioLDM's recipe without
the VAE, with a Griffin-Lim vocoder, or a learned one (then its final clip comes with the same mel through
Griffin-Lim, `MelAudioOutput.griffin_lim`, for the Audio tab to play side by side). This module imports neither
torch nor diffusers until a model is used, so the app starts without them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile
from PIL import Image

if TYPE_CHECKING:  # annotations only: torch is imported on first use
    import torch

from .base import AudioOutput, Step, Timer, created_now, stream_steps
from .checks import MAX_PROMPT_CHARS, check_range, check_seed, check_text
from .diffusion import DiffusionModel, denoise, generator_for
from .recipe import recipe_text


class AudioPipeline(DiffusionModel):
    task = "audio"
    LIMITS = {"num_inference_steps": (1, 200), "guidance_scale": (0.0, 20.0), "duration_s": (1.0, 10.0)}

    def load(self, path: str):
        """The bundled mel model through its own class; AudioLDM (2) and others through DiffusionPipeline."""
        index = Path(path) / "model_index.json"
        if index.exists() and json.loads(index.read_text()).get("_class_name") == "MelDiffusionPipeline":
            from .mel_diffusion import MelDiffusionPipeline

            return MelDiffusionPipeline.from_pretrained(path, dtype=self.dtype)
        return super().load(path)

    def check_inputs(self, prompt, negative_prompt, duration_s, num_inference_steps, guidance_scale, seed) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        check_text("negative_prompt", negative_prompt, MAX_PROMPT_CHARS, optional=True)
        check_range("duration_s", duration_s, *self.limit("duration_s"))
        check_range("num_inference_steps", num_inference_steps, *self.limit("num_inference_steps"), integer=True)
        check_range("guidance_scale", guidance_scale, *self.limit("guidance_scale"))
        check_seed(seed)

    def stream(self, prompt: str, negative_prompt: str = "", duration_s: float | None = None,
               num_inference_steps: int | None = None, guidance_scale: float | None = None, seed: int = 0,
               preview: bool = True, previews_per_s: float | None = None) -> Iterator[Step | AudioOutput]:
        """Yield one Step per denoising iteration (preview: the predicted mel spectrogram), then an AudioOutput.

        `previews_per_s`: at most that many step previews a second, as ImagePipeline.stream."""
        duration_s = self.setting("duration_s", duration_s, 5.0)
        num_inference_steps = self.setting("num_inference_steps", num_inference_steps, 25)
        guidance_scale = self.setting("guidance_scale", guidance_scale, 3.0)
        self.check_inputs(prompt, negative_prompt, duration_s, num_inference_steps, guidance_scale, seed)

        def work(emit):
            pipe = self.pipe  # loads on first use; not counted in the timings
            timer = Timer()
            kwargs = dict(prompt=prompt.strip(), audio_length_in_s=float(duration_s),
                          num_inference_steps=int(num_inference_steps),
                          guidance_scale=float(guidance_scale), generator=generator_for(int(seed)))
            if negative_prompt and negative_prompt.strip() and guidance_scale > 1:
                kwargs["negative_prompt"] = negative_prompt.strip()
            decode = (lambda x0: self.decode_preview(pipe, x0)) if preview else None
            output, steps = denoise(pipe, kwargs, emit, int(num_inference_steps), decode, timer, threads=self.threads,
                                    previews_per_s=previews_per_s)
            audio = within_range(np.asarray(output.audios[0], dtype=np.float32).reshape(-1))
            seconds = timer()  # the comparison below is not the model's time
            recipe = recipe_text("audio", prompt.strip(), (negative_prompt or "").strip(),
                                 num_inference_steps=int(num_inference_steps), guidance_scale=float(guidance_scale),
                                 seed=int(seed), duration_s=float(duration_s), model=self.spec.model_id)
            return MelAudioOutput(sample_rate=sample_rate(pipe), audio=audio, seed=int(seed), seconds=seconds, steps=steps,
                                  recipe=recipe, griffin_lim=griffin_lim_of(pipe, output, audio.size))

        return stream_steps(work, self.lock, self.threads)

    @staticmethod
    def decode_preview(pipe, x0: torch.Tensor):
        """The predicted clean mel spectrogram (frequency up, time right) as a colour image."""
        import torch

        if x0.ndim != 4:
            return None
        vae = getattr(pipe, "vae", None)
        if vae is not None:  # AudioLDM: latents -> mel through the VAE
            with torch.no_grad():
                mel = vae.decode(x0 / vae.config.scaling_factor).sample
        else:  # the bundled model: patches -> mel
            mel = pipe.latents_to_mel(x0) if hasattr(pipe, "latents_to_mel") else x0
        return spectrogram_image(mel[0, 0].float().cpu().numpy().T)


@dataclass
class MelAudioOutput(AudioOutput):
    """base.AudioOutput, plus, from the bundled model with its learned vocoder, the same mel through Griffin-Lim."""

    griffin_lim: Any = None  # 1-D float32 ndarray like `audio` (same rate and length), or None where there is none


def griffin_lim_of(pipe, output, num_samples: int):
    """The final mel of a MelDiffusionPipeline with a learned vocoder, rendered by Griffin-Lim (the fallback vocoder)
    for the Audio tab's side-by-side; None for Griffin-Lim models and AudioLDM. About 0.1 s for 2 s of audio."""
    mels = getattr(output, "mels", None)
    if mels is None or not hasattr(pipe, "mel_to_audio") or pipe.mel is pipe.vocoder:
        return None
    return within_range(pipe.mel_to_audio(mels[:1], num_samples, griffin_lim=True)[0].cpu().numpy().astype(np.float32))


def sample_rate(pipe) -> int:
    vocoder = getattr(pipe, "vocoder", None)
    if vocoder is not None and hasattr(vocoder, "config"):
        return int(vocoder.config.sampling_rate)
    return int(getattr(pipe.config, "sample_rate", 16000))


def spectrogram_image(mel: np.ndarray, height: int = 160) -> Image.Image:
    """(n_mels, frames) log-mel values -> an RGB image, low frequencies at the bottom ("magma"-like map)."""
    lo, hi = np.percentile(mel, 2), np.percentile(mel, 99.5)
    x = np.clip((mel - lo) / max(hi - lo, 1e-6), 0, 1)[::-1]
    rgb = np.stack([np.clip(1.6 * x, 0, 1), np.clip(1.6 * x - 0.6, 0, 1) ** 1.2,
                    np.clip(0.5 + 0.5 * np.sin(3.2 * x + 0.3), 0, 1) * x], -1)
    img = Image.fromarray((rgb * 255).astype(np.uint8))
    return img.resize((max(img.width * 2, 256), height), Image.BILINEAR)


def log_mel(audio: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """A log-mel spectrogram (n_mels, frames) of a waveform, for display: torchaudio's MelSpectrogram (HTK scale; zero
    padding at the ends, so a clip shorter than the window still shows)."""
    import torch
    import torchaudio

    transform = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=n_mels,
                                                     mel_scale="htk", norm=None, pad_mode="constant")
    return torch.log10(transform(torch.from_numpy(np.asarray(audio, np.float32))) + 1e-8).numpy()


def within_range(audio: np.ndarray) -> np.ndarray:
    """A waveform peaking above -1 dBFS (0.891), scaled down to peak there; a quieter one, as it is. A mel model's
    Griffin-Lim output is not bounded (peaks of 4 seen from the bundled model)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (0.891 / peak)).astype(np.float32) if peak > 0.891 else audio


def wav_bytes(audio: np.ndarray, sample_rate: int, title: str = "", comment: str = "") -> bytes:
    """16-bit PCM WAV of a float waveform (peak-normalised to -1 dBFS if it clips), written by soundfile with the
    `title`, `comment` (the recipe) and creation date in its LIST/INFO chunk (INAM, ICMT, ICRD)."""
    audio = within_range(audio)
    buf = io.BytesIO()
    with soundfile.SoundFile(buf, "w", sample_rate, 1, "PCM_16", format="WAV") as f:
        for name, value in (("title", title), ("comment", comment), ("date", created_now())):
            if value:
                setattr(f, name, value)
        f.write(np.clip(audio, -1, 1).astype(np.float32))
    return buf.getvalue()


def render_clip(audio: np.ndarray, sample_rate: int, recipe: str = "") -> tuple[bytes, Image.Image]:
    """What the Audio tab shows for a finished clip: (WAV bytes carrying the recipe, log-mel spectrogram image).
    gr.Audio draws the waveform itself."""
    title = recipe.split("\n", 1)[0] if recipe else ""
    return wav_bytes(audio, sample_rate, title, recipe), spectrogram_image(log_mel(audio, sample_rate))
