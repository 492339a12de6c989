"""The learned vocoder in MelDiffusionPipeline, Griffin-Lim beside it: the bundled `IstftVocoder`, or transformers'
SpeechT5HifiGan (as AudioLDM 2).

Tiny vocoders of both classes, built from configs, go through the pipeline and the app's AudioPipeline; the training
script runs 2 steps of each; its mel is the pipeline's; and the bundled vocoder keeps a pure tone's pitch and beats
Griffin-Lim on seeds nothing else uses.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from pipelines.audio import AudioPipeline, MelAudioOutput
from pipelines.base import final
from pipelines.specs import ModelSpec

BUNDLED = ROOT / "models" / "tiny-sounds-audio"


def learned_vocoder_bundled() -> bool:
    index = BUNDLED / "model_index.json"
    return index.exists() and json.loads(index.read_text())["vocoder"][1] != "GriffinLimVocoder"


bundled_vocoder = pytest.mark.skipif(not learned_vocoder_bundled(),
                                     reason="the bundled audio model has no learned vocoder in this checkout")


def tiny_hifigan(n_mels: int):
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    return SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=n_mels, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        normalize_before=False))


def tiny_istft(n_mels: int):
    from pipelines.mel_diffusion import IstftVocoder

    torch.manual_seed(0)
    return IstftVocoder(n_mels=n_mels, dim=16, num_layers=1)


def tone_peak(audio: np.ndarray) -> float:
    """The strongest frequency (Hz) of a steady clip, past its first 0.1 s (a 2 Hz zero-padded FFT)."""
    x = np.asarray(audio[1600:], np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8192)) ** 2
    freqs = np.fft.rfftfreq(8192, 1 / 16000)
    power[freqs < 40] = 0
    return float(freqs[np.argmax(power)])


def test_training_mel_is_the_pipelines_mel():
    """train_vocoder.LogMel (torch alone, for the GPU machine) is GriffinLimVocoder.encode, the model's mel."""
    from train_vocoder import LogMel

    from pipelines.mel_diffusion import GriffinLimVocoder

    config = {k: v for k, v in json.loads((BUNDLED / "griffin_lim" / "config.json").read_text()).items()
              if not k.startswith("_")} if (BUNDLED / "griffin_lim").exists() else dict(GriffinLimVocoder().config)
    audio = torch.randn(2, 12000, generator=torch.Generator().manual_seed(0)) * 0.2
    ours = LogMel(config)(audio)
    theirs = GriffinLimVocoder(**{k: v for k, v in config.items() if k in GriffinLimVocoder().config}).encode(audio)
    assert ours.shape == theirs.shape == (2, 47, config["n_mels"])
    assert (ours - theirs).abs().max() < 1e-4


@pytest.mark.parametrize("make, library", [(tiny_hifigan, "transformers"), (tiny_istft, "pipelines.mel_diffusion")],
                         ids=["SpeechT5HifiGan", "IstftVocoder"])
def test_a_learned_vocoder_goes_through_the_pipeline(tiny_mel, tmp_path, make, library):
    """A tiny learned vocoder as the `vocoder` of a MelDiffusionPipeline, Griffin-Lim as `griffin_lim`: saved, loaded
    by the app's AudioPipeline, the final clip from the learned vocoder and the same mel through Griffin-Lim."""
    from pipelines.mel_diffusion import GriffinLimVocoder, MelDiffusionPipeline

    parts = MelDiffusionPipeline.from_pretrained(tiny_mel).components
    griffin_lim = parts.pop("vocoder")
    parts.pop("griffin_lim", None)
    vocoder = make(griffin_lim.config.n_mels)
    pipe = MelDiffusionPipeline(**parts, vocoder=vocoder, griffin_lim=griffin_lim)
    pipe.save_pretrained(tmp_path, safe_serialization=True)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["vocoder"] == [library, type(vocoder).__name__]
    assert index["griffin_lim"] == ["pipelines.mel_diffusion", "GriffinLimVocoder"]
    assert list((tmp_path / "vocoder").glob("*.safetensors")) and not list(tmp_path.rglob("*.bin"))

    audio = AudioPipeline(ModelSpec(str(tmp_path), "test", limits={"duration_s": (0.1, 4.0)}), device="cpu")
    assert type(audio.pipe.vocoder) is type(vocoder) and isinstance(audio.pipe.mel, GriffinLimVocoder)
    items = list(audio.stream("a high tone", duration_s=0.5, num_inference_steps=2, guidance_scale=3.0, seed=0))
    steps, out = items[:-1], items[-1]
    assert len(steps) == 2 and all(s.preview is not None for s in steps)  # previews stay the spectrogram
    assert isinstance(out, MelAudioOutput) and out.sample_rate == 16000
    assert out.audio.shape == out.griffin_lim.shape == (8000,)
    assert np.isfinite(out.audio).all() and np.isfinite(out.griffin_lim).all()
    assert np.abs(out.griffin_lim).max() <= 0.8915 and not np.allclose(out.audio, out.griffin_lim)
    again = final(audio.stream("a high tone", duration_s=0.5, num_inference_steps=2, guidance_scale=3.0, seed=0))
    np.testing.assert_allclose(again.audio, out.audio, atol=1e-5)  # a seed still reproduces the clip
    # The Griffin-Lim rendering is the same mel's: the pipeline's own Griffin-Lim on its output mel.
    result = audio.pipe("a high tone", audio_length_in_s=0.5, num_inference_steps=2,
                        generator=torch.Generator().manual_seed(0))
    assert result.mels.shape[-1] == griffin_lim.config.n_mels
    gl = audio.pipe.mel_to_audio(result.mels, 8000, griffin_lim=True)[0].numpy()
    np.testing.assert_allclose(np.asarray(result.audios[0]), audio.pipe.mel_to_audio(result.mels, 8000)[0].numpy(),
                               atol=1e-6)
    assert gl.shape == (8000,)
    alone = MelDiffusionPipeline(**parts, vocoder=vocoder)  # no Griffin-Lim saved: one built from the vocoder's config
    assert (alone.mel.config.n_mels, alone.mel.config.hop_length) == (griffin_lim.config.n_mels, 256)


def test_a_griffin_lim_model_has_no_comparison(tiny_mel):
    """A folder whose only vocoder is Griffin-Lim (as before) plays it, with no second rendering."""
    audio = AudioPipeline(ModelSpec(tiny_mel, "test", limits={"duration_s": (0.1, 4.0)}), device="cpu")
    out = final(audio.stream("a high tone", duration_s=0.5, num_inference_steps=2, guidance_scale=3.0, seed=0))
    assert out.audio.shape == (8000,) and out.griffin_lim is None


@pytest.mark.parametrize("arch", ["istft", "hifigan"])
def test_train_vocoder_runs_and_saves_what_the_pipeline_loads(tmp_path, arch):
    """Two steps on four tiny clips: a vocoder folder (safetensors; the HiFi-GAN with no weight norm left) and its
    training_info.json."""
    from transformers import SpeechT5HifiGan

    from pipelines.mel_diffusion import IstftVocoder

    t = np.arange(32768) / 16000
    clips = np.stack([np.sin(2 * np.pi * f * t) * 0.5 for f in (220, 330, 440, 660)])
    np.savez_compressed(tmp_path / "clips.npz", clips=np.round(clips * 32767).astype(np.int16))
    out = tmp_path / "vocoder"
    subprocess.run([sys.executable, str(ROOT / "training" / "train_vocoder.py"), "--data", str(tmp_path / "clips.npz"),
                    "--arch", arch, "--out", str(out), "--steps", "2", "--batch-size", "2", "--threads", "1"],
                   check=True, capture_output=True, timeout=300)
    info = json.loads((out / "training_info.json").read_text())
    assert (info["steps"], info["seed"], info["device"], info["num_clips"], info["arch"]) == (2, 0, "cpu", 4, arch)
    direct = {"amp", "phase"} if arch == "istft" else set()  # the frame-rate vocoder's spectrum, supervised directly
    assert set(info["losses"]) == {"loss", "stft", "mel_l1"} | direct
    assert all(np.isfinite(list(info["losses"].values())))
    assert list(out.glob("*.safetensors")) and not list(out.rglob("*.bin"))
    if arch == "hifigan":
        vocoder = SpeechT5HifiGan.from_pretrained(out)
        assert not any("parametrizations" in name for name, _ in vocoder.named_parameters())
        assert vocoder(torch.zeros(1, 4, vocoder.config.model_in_dim)).shape == (1, 4 * 256)
    else:
        vocoder = IstftVocoder.from_pretrained(out, torch_dtype=torch.float32)
        assert vocoder(torch.zeros(1, 5, vocoder.config.n_mels)).shape == (1, 4 * 256)


def test_the_phase_loss_is_the_instantaneous_frequency_error():
    """train_vocoder's direct phase loss, on a pure tone: near 0 for a spectrum whose every bin turns at the tone's
    frequency (a steady sinusoid's instantaneous frequency, in every bin its window reaches), and large for the
    untrained IstftVocoder, which turns each bin at the bin's own frequency (the main lobe's side bins are a quarter
    turn off per hop). The roughened mel differs where asked and only there."""
    sys.path.insert(0, str(ROOT / "training"))
    from types import SimpleNamespace

    from train_vocoder import LogMel, roughen, spectrum_losses, wrap

    from pipelines.mel_diffusion import IstftVocoder

    vocoder = IstftVocoder()  # its head starts at zero
    c = vocoder.config
    to_mel = LogMel({k: c[k] for k in ("sampling_rate", "n_fft", "hop_length", "n_mels", "f_min", "f_max", "db_min",
                                       "db_max")})
    freq = 20.3 * c.sampling_rate / c.n_fft
    # long, so the reflect-padded frames at its ends weigh little
    y = 0.5 * torch.sin(2 * np.pi * freq * torch.arange(65536) / c.sampling_rate)[None]
    mel = to_mel(y)
    log_mag, _ = vocoder.spectrum(mel)
    bins = torch.arange(log_mag.shape[1], dtype=torch.float32)[:, None]
    locked = wrap(2 * np.pi * c.hop_length * (freq / c.sampling_rate - bins / c.n_fft)).expand_as(log_mag)
    ideal = SimpleNamespace(config=c, spectrum=lambda m: (log_mag, locked))
    with torch.no_grad():
        right, untrained = (float(spectrum_losses(m, mel, y)["phase"]) for m in (ideal, vocoder))
    assert right < 0.1 and untrained > 0.5, (right, untrained)
    assert torch.allclose(wrap(torch.tensor([3 * np.pi, -3 * np.pi, 0.5, 2 * np.pi + 0.5])).abs(),
                          torch.tensor([np.pi, np.pi, 0.5, 0.5]), atol=1e-5)
    mel = torch.zeros(2, 33, 64)
    rough = roughen(mel, 1.0, torch.Generator().manual_seed(0))
    assert rough.abs().max() > 0 and torch.equal(roughen(mel, 0.0, torch.Generator().manual_seed(0)), mel)


@bundled_vocoder
def test_the_bundled_vocoder_keeps_a_pure_tones_pitch():
    """A pure tone's mel, through the bundled vocoder: the waveform's strongest frequency within a semitone."""
    from pipelines.mel_diffusion import MelDiffusionPipeline

    pipe = MelDiffusionPipeline.from_pretrained(BUNDLED, dtype=torch.float32)
    t = np.arange(32768) / 16000
    for freq in (165.0, 370.0, 784.0, 1760.0):
        mel = pipe.mel.encode(torch.from_numpy(0.5 * np.sin(2 * np.pi * freq * t)).float()[None])
        audio = pipe.mel_to_audio(mel, 32768)[0].numpy()
        assert abs(12 * np.log2(tone_peak(audio) / freq)) < 1.0, freq


@bundled_vocoder
def test_the_bundled_vocoder_renders_tonal_sounds_truer_than_griffin_lim():
    """On a seed nothing else uses, the bundled model's final mel of a tonal sound through each vocoder, analysed
    again: the vocoder's waveform gives back a log-mel nearer the one the model made than Griffin-Lim's (mean absolute
    dB), as a coherent sinusoid per note rather than Griffin-Lim's smeared harmonics. Speech is the two vocoders' tie
    (at this stop 5.2 dB against 4.6 for "a voice saying seven"; words are recognised as often, test_audio_bundled)."""
    from pipelines.mel_diffusion import MelDiffusionPipeline

    pipe = MelDiffusionPipeline.from_pretrained(BUNDLED, dtype=torch.float32)
    db = pipe.mel.config.db_max - pipe.mel.config.db_min
    errors = {"vocoder": [], "griffin_lim": []}
    for prompt in ("a rising scale", "a low tone", "a high tone"):
        mel = pipe(prompt, audio_length_in_s=2.0, num_inference_steps=25, guidance_scale=3.0,
                   generator=torch.Generator().manual_seed(70_901)).mels
        for name in errors:
            audio = pipe.mel_to_audio(mel, 32000, griffin_lim=name == "griffin_lim")
            again = pipe.mel.encode(audio)[:, :125]
            errors[name].append(float((again - mel[:, :125]).abs().mean()) / 2 * db)
    print("log-mel given back, mean absolute dB:", {k: [round(e, 2) for e in v] for k, v in errors.items()})
    assert all(v < g for v, g in zip(errors["vocoder"], errors["griffin_lim"])), errors
