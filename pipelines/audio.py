"""Text-to-audio: AudioLDM / AudioLDM 2 (Hub) or the bundled tiny mel-spectrogram model, as a stream of
denoising steps; each preview is the predicted clean mel spectrogram, as an image."""

import io
import wave
from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image

from .base import AudioOutput, Step, Timer, check_range, check_seed, check_text, stream_steps
from .diffusion import DiffusionModel, denoise, generator_for
from .image import MAX_PROMPT_CHARS, known_words


class AudioPipeline(DiffusionModel):
    task = "audio"

    @property
    def vocabulary(self) -> list[str] | None:
        return known_words(self.spec.model_id)

    @property
    def info(self) -> dict:
        return {**super().info, "vocabulary": self.vocabulary}

    def check_inputs(self, prompt, negative_prompt, duration_s, num_inference_steps, guidance_scale, seed) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        if negative_prompt is not None and len(negative_prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"`negative_prompt` is {len(negative_prompt)} characters long; the limit is {MAX_PROMPT_CHARS}.")
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
            return AudioOutput(sample_rate=sample_rate(pipe), audio=audio, seed=int(seed), seconds=timer(), steps=steps)

        return stream_steps(work, self.lock)

    @staticmethod
    @torch.no_grad()
    def decode_preview(pipe, x0: torch.Tensor):
        """The predicted clean mel spectrogram (frequency up, time right) as a colour image."""
        if x0.ndim != 4:
            return None
        vae = getattr(pipe, "vae", None)
        mel = vae.decode(x0 / vae.config.scaling_factor).sample if vae is not None else x0
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


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV of a float waveform (peak-normalised to -1 dBFS if it clips)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.891:
        audio = audio * (0.891 / peak)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def waveform_image(audio: np.ndarray, width: int = 512, height: int = 120) -> Image.Image:
    """Min/max envelope of the waveform per pixel column, drawn on white."""
    img = np.full((height, width, 3), 255, np.uint8)
    if audio.size:
        cols = np.array_split(np.clip(audio, -1, 1), width)
        mid = height / 2
        for x, col in enumerate(cols):
            if col.size:
                top, bottom = int(mid - col.max() * (mid - 2)), int(mid - col.min() * (mid - 2))
                img[top:bottom + 1, x] = (40, 90, 200)
        img[int(mid)] = (180, 180, 180)
    return Image.fromarray(img)


def render_clip(audio: np.ndarray, sample_rate: int) -> tuple[bytes, Image.Image, Image.Image]:
    """What the Audio tab shows for a finished clip: (WAV bytes, waveform image, log-mel spectrogram image)."""
    return wav_bytes(audio, sample_rate), waveform_image(audio), spectrogram_image(log_mel(audio, sample_rate))
