"""The bundled audio model's own diffusers classes: `MelDiffusionPipeline` (AudioLDM's recipe without the VAE)
and its `GriffinLimVocoder`. Its UNet denoises the log-mel spectrogram itself, laid out as AudioLDM's
latents are (batch, 1, frames, mels), and the vocoder turns the mel into a waveform. Both are ordinary
diffusers classes (`DiffusionPipeline`, `ModelMixin`), saved and loaded with `save_pretrained` /
`from_pretrained`. Imported on first use (pipelines/audio.py), as they bring torch and diffusers.
"""

import math
from collections.abc import Callable

import torch
import torchaudio
from diffusers import DiffusionPipeline
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.pipelines.pipeline_utils import AudioPipelineOutput


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale, each peaking at 1 (torchaudio's)."""
    return torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate, norm=None,
                                                 mel_scale="htk").T.contiguous()


class GriffinLimVocoder(ModelMixin, ConfigMixin):
    """Log-mel spectrogram <-> waveform, with no learned weights: `encode` is the analysis the model
    was trained on, `forward` inverts it (least-squares mel inversion, then torchaudio's fast Griffin-Lim).

    Mels are scaled to [-1, 1]: `db_min` dB maps to -1 and `db_max` dB to 1, the range the UNet sees.
    Griffin-Lim starts from zero phase, not a random one: the waveform is a pure function of the mel, so a seed
    (which drives the diffusion noise) reproduces a clip exactly, with no random state shared between threads.
    """

    @register_to_config
    def __init__(self, sampling_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float = 8000.0, db_min: float = -50.0, db_max: float = 50.0,
                 n_iter: int = 32, momentum: float = 0.99):
        super().__init__()
        fb = mel_filterbank(sampling_rate, n_fft, n_mels, f_min, f_max)
        self.register_buffer("mel_basis", fb)  # saved, so the folder says exactly what a mel bin is
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) waveform -> (batch, frames, n_mels) scaled log-mel in [-1, 1]."""
        c = self.config
        power = torchaudio.functional.spectrogram(audio.float(), pad=0, window=self.window.float(), n_fft=c.n_fft,
                                                  hop_length=c.hop_length, win_length=c.n_fft, power=2.0,
                                                  normalized=False)  # (batch, freq, frames)
        mel = (power.transpose(1, 2) @ self.mel_basis.float().T).transpose(1, 2)  # torchaudio's MelScale, our basis
        db = torchaudio.functional.amplitude_to_DB(mel, multiplier=10.0, amin=1e-10, db_multiplier=0.0)
        return ((db - c.db_min) / (c.db_max - c.db_min) * 2 - 1).clamp(-1, 1).transpose(1, 2)

    @torch.no_grad()
    def forward(self, mel: torch.Tensor, num_samples: int | None = None, generator: torch.Generator | None = None):
        """(batch, frames, n_mels) scaled log-mel -> (batch, samples) waveform. `generator` is accepted for the
        vocoder interface and unused: Griffin-Lim starts from zero phase."""
        c = self.config
        db = (mel.float().clamp(-1, 1).transpose(1, 2) + 1) / 2 * (c.db_max - c.db_min) + c.db_min
        power = torchaudio.functional.DB_to_amplitude(db, ref=1.0, power=1.0)  # (batch, n_mels, frames)
        # What torchaudio's InverseMelScale computes, on the saved basis: the least-squares spectrogram, clamped at 0
        driver = "gelsd" if power.device.type == "cpu" else None  # gelsd: the minimum-norm solution, as pinv's
        power = torch.linalg.lstsq(self.mel_basis.float()[None], power, driver=driver).solution.clamp(min=0)
        length = (power.shape[-1] - 1) * c.hop_length  # what these frames span; trimmed at the end
        audio = torchaudio.functional.griffinlim(power.sqrt(), self.window.float(), c.n_fft, c.hop_length, c.n_fft,
                                                 power=1.0, n_iter=c.n_iter, momentum=c.momentum, length=length,
                                                 rand_init=False)
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
