"""The bundled audio model's own diffusers classes: `MelDiffusionPipeline` (AudioLDM's recipe without the VAE)
and its vocoders. Its UNet denoises the log-mel spectrogram itself, laid out as AudioLDM's latents are
(batch, 1, frames, mels), and a vocoder turns the mel into a waveform: a learned one (`IstftVocoder`, trained by
training/train_vocoder.py; transformers' `SpeechT5HifiGan`, AudioLDM 2's, runs too) or `GriffinLimVocoder`, which
also defines the mel (its `encode`) and stays as the fallback and the comparison. All are ordinary diffusers
classes (`DiffusionPipeline`, `ModelMixin`), saved and loaded with `save_pretrained` / `from_pretrained`.
Imported on first use (pipelines/audio.py), as they bring torch and diffusers.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

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
        if num_samples is None:
            return audio
        return torch.nn.functional.pad(audio, (0, max(0, num_samples - length)))[..., :num_samples]


class _ConvNeXtBlock(torch.nn.Module):
    """Depthwise conv over time, LayerNorm, a 3x MLP, a learned per-channel scale, residual (ConvNeXt 1-D, as Vocos)."""

    def __init__(self, dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = torch.nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.pwconv1, self.pwconv2 = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(3 * dim, dim)
        self.gamma = torch.nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, dim, frames)
        h = self.pwconv2(torch.nn.functional.gelu(self.pwconv1(self.norm(self.dwconv(x).transpose(1, 2)))))
        return x + (h * self.gamma).transpose(1, 2)


class IstftVocoder(ModelMixin, ConfigMixin):
    """A learned vocoder that works at the mel's frame rate (Vocos, Siuzdak 2023): ConvNeXt blocks read the mel and
    predict, for every STFT frame, each bin's log-magnitude (a correction to Griffin-Lim's least-squares estimate)
    and how far its phase turns since the last frame (its instantaneous frequency, around the bin's own); the phases
    are summed over time, so a steady tone stays one coherent sinusoid, and an inverse STFT makes the waveform.
    Trained by training/train_vocoder.py.

    Same call as GriffinLimVocoder: (batch, frames, n_mels) scaled log-mel -> (batch, samples), a pure function of the mel.
    """

    @register_to_config
    def __init__(self, sampling_rate: int = 16000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float = 8000.0, db_min: float = -50.0, db_max: float = 50.0,
                 dim: int = 192, num_layers: int = 6):
        super().__init__()
        # Each bin's starting magnitude is Griffin-Lim's (the least-squares inverse of the mel filters) and its phase
        # turns at the bin's own frequency: with the head at zero, the untrained vocoder already keeps a pure tone's
        # pitch; the network learns corrections (harmonics, phase), not the loudness (a log-magnitude 12 wide).
        fb = mel_filterbank(sampling_rate, n_fft, n_mels, f_min, f_max)  # (n_mels, bins)
        self.register_buffer("inverse", torch.linalg.pinv(fb.double()).float().contiguous(), persistent=False)
        self.embed = torch.nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = torch.nn.LayerNorm(dim)
        self.blocks = torch.nn.ModuleList(_ConvNeXtBlock(dim, 1 / num_layers) for _ in range(num_layers))
        self.final_norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, n_fft + 2)  # per bin: log-magnitude, phase turn (corrections; start at 0)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrum(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-magnitude, phase turn since the last frame minus the bin's own, in radians), each (batch, bins,
        frames): what the inverse STFT is made from, and what training/train_vocoder.py supervises directly."""
        c = self.config
        x = self.norm(self.embed(mel.to(self.embed.weight.dtype).transpose(1, 2)).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        log_mag, turn = self.head(self.final_norm(x.transpose(1, 2))).float().transpose(1, 2).chunk(2, dim=1)
        db = (mel.float().clamp(-1, 1) + 1) / 2 * (c.db_max - c.db_min) + c.db_min  # (batch, frames, n_mels)
        power = ((10 ** (db / 10)) @ self.inverse.T.float()).clamp(min=0)  # (batch, frames, bins), as Griffin-Lim's
        return log_mag + 0.5 * torch.log(power + 1e-10).transpose(1, 2), math.pi * torch.tanh(turn)

    def forward(self, mel: torch.Tensor, num_samples: int | None = None, generator: torch.Generator | None = None):
        c = self.config
        log_mag, turn = self.spectrum(mel)
        bins = torch.arange(log_mag.shape[1], device=mel.device, dtype=torch.float32)[:, None]
        phase = torch.cumsum(bins * (2 * math.pi * c.hop_length / c.n_fft) + turn, dim=2)
        magnitude = torch.exp(log_mag).clamp(max=100.0)
        spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        audio = torch.istft(spec, c.n_fft, c.hop_length, c.n_fft, self.window.float(), center=True)  # (frames - 1) hops
        if num_samples is None:
            return audio
        return torch.nn.functional.pad(audio, (0, max(0, num_samples - audio.shape[-1])))[..., :num_samples]


@dataclass
class MelPipelineOutput(AudioPipelineOutput):
    """`audios` as AudioLDM's pipelines return them, plus the final mel they were vocoded from."""

    mels: torch.Tensor | None = None  # (batch, frames, n_mels) scaled log-mel in [-1, 1]


class MelDiffusionPipeline(DiffusionPipeline):
    """Text-to-audio by denoising a log-mel spectrogram, then a vocoder: AudioLDM without the VAE.

    Components: `tokenizer` + `text_encoder` (CLIP), `unet` (`UNet2DConditionModel`, cross-attention
    on the text), `scheduler`, `vocoder` (`IstftVocoder`, `SpeechT5HifiGan` or `GriffinLimVocoder`) and `griffin_lim`
    (optional: the `GriffinLimVocoder` whose `encode` defines the mel, the fallback and the comparison; a
    folder whose `vocoder` is Griffin-Lim needs none). Instead of a learned VAE, the mel is cut into
    `patch_size` x `patch_size` patches stacked as channels (a lossless pixel-unshuffle), so the UNet works
    on a 16x smaller grid. Called like `AudioLDMPipeline`: prompt, audio_length_in_s, num_inference_steps,
    guidance_scale, negative_prompt, generator, callback_on_step_end; returns `MelPipelineOutput(audios=...,
    mels=...)`. `mel_to_audio(mels, n, griffin_lim=True)` renders the same mel through Griffin-Lim.
    """

    model_cpu_offload_seq = "text_encoder->unet"
    _callback_tensor_inputs = ["latents"]
    _optional_components = ["griffin_lim"]

    def __init__(self, tokenizer, text_encoder, unet, scheduler, vocoder, patch_size: int = 4,
                 griffin_lim: GriffinLimVocoder | None = None):
        super().__init__()
        self.register_modules(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
                              vocoder=vocoder, griffin_lim=griffin_lim)
        self.register_to_config(patch_size=patch_size)

    @property
    def mel(self) -> GriffinLimVocoder:
        """The Griffin-Lim vocoder that defines the mel: `griffin_lim`, else a Griffin-Lim `vocoder`, else one built
        from the learned vocoder's config (a HiFi-GAN's hop: the product of its upsampling)."""
        if self.griffin_lim is not None:
            return self.griffin_lim
        if isinstance(self.vocoder, GriffinLimVocoder):
            return self.vocoder
        if "_mel_from_vocoder" not in self.__dict__:
            c = self.vocoder.config
            self.__dict__["_mel_from_vocoder"] = GriffinLimVocoder(**{
                k: c[k] for k in ("sampling_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max", "db_min", "db_max")
            }) if isinstance(self.vocoder, IstftVocoder) else GriffinLimVocoder(  # SpeechT5HifiGan's config
                sampling_rate=c.sampling_rate, hop_length=math.prod(c.upsample_rates), n_mels=c.model_in_dim)
        return self.__dict__["_mel_from_vocoder"]

    @torch.no_grad()
    def mel_to_audio(self, mels: torch.Tensor, num_samples: int, griffin_lim: bool = False) -> torch.Tensor:
        """(batch, frames, n_mels) scaled log-mel -> (batch, num_samples) waveform, through the pipeline's vocoder or,
        with `griffin_lim`, through Griffin-Lim (the fallback; the comparison the Audio tab plays)."""
        if griffin_lim or isinstance(self.vocoder, (GriffinLimVocoder, IstftVocoder)):
            return (self.mel if griffin_lim else self.vocoder)(mels.float(), num_samples)
        audio = self.vocoder(mels.to(self.vocoder.device, self.vocoder.dtype)).float()
        return torch.nn.functional.pad(audio, (0, max(0, num_samples - audio.shape[-1])))[..., :num_samples]

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
        voc, patch = self.mel.config, self.config.patch_size
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
        mel = None
        if output_type == "latent":
            audio = latents
        else:
            mel = self.latents_to_mel(latents)[:, 0].float()
            audio = self.mel_to_audio(mel, num_samples).cpu()
            audio = audio.numpy() if output_type == "np" else audio
        self.maybe_free_model_hooks()
        return MelPipelineOutput(audios=audio, mels=mel) if return_dict else (audio,)
