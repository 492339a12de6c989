"""Procedural, captioned 2-second sounds at 16 kHz: the data the bundled audio model learns from.

Each clip is one named sound, or two mixed ("a fast drum beat and a rising siren"). Every sound's
parameters (pitch, tempo, sweep range, loudness) are drawn at random around its name, so the model
learns what the word means rather than one waveform. `measure` reads back, with numpy alone, what
the tests check: spectral centroid, flatness, pitch trend, onset count; `note_pitches` the notes of
a scale.

Speech ("a voice saying seven") is rendered by the Debian package `espeak-ng` (GPL-3.0; its output is
not covered by the GPL), called as a program, with a random voice, rate and pitch from VOICES, RATES
and PITCHES, so the model learns the word rather than one recording. Music ("a rising scale") is
eight separate plucked notes of a major scale.

    python training/sounds.py /tmp/sounds    # writes one WAV per sound name, to listen to
"""

import functools
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
DURATION_S = 2.048  # 128 frames of 256 samples: the mel "image" is 128 x 64

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "red", "green", "blue", "yellow", "orange", "purple", "white", "black")  # "a voice saying WORD"
SPOKEN = tuple(f"a voice saying {w}" for w in WORDS)
SOUNDS = ("a low tone", "a high tone", "a rising siren", "a falling siren", "a slow drum beat", "a fast drum beat",
          "rain", "white noise", "a major chord", "a minor chord", "a bell", "birdsong", "a rising scale",
          "a falling scale")
# Sounds with a pitch mix well with a texture or a rhythm: "a low tone and rain".
PITCHED = ("a low tone", "a high tone", "a rising siren", "a falling siren", "a major chord", "a minor chord",
           "a bell", "birdsong", "a rising scale", "a falling scale")
BACKGROUND = ("a slow drum beat", "a fast drum beat", "rain", "white noise")
VOCABULARY = sorted({w for s in SOUNDS + SPOKEN for w in s.split()} | {"and", "with"})
# espeak-ng voices (three English accents), words per minute and pitch (0-99) drawn for speech clips. A
# narrow spread on purpose: with ten voices, 120-200 wpm and pitch 25-75 a model this size trained for
# 2,400 steps learnt their average, a band of noise, not a word (4 of 18 words recognised).
VOICES = ("en-us", "en-gb", "en-gb-x-rp")
RATES = (140, 180)
PITCHES = (40, 60)
SPEECH_START_S = (0.08, 0.16)  # a word starts here: in a fixed place the model learns its shape, not where it falls
MAJOR = (0, 2, 4, 5, 7, 9, 11, 12)  # semitones of a major scale, root to octave
SCALE_SPACING_S = 0.243  # a note every 243 ms: eight fill the clip
SCALE_START_S = (0.04, 0.06)  # the first note starts here, after enough silence to read as an onset


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _tone(freq, n: int, rng: random.Random, harmonics: int = 3) -> np.ndarray:
    """A soft-edged tone with a few decaying harmonics; `freq` is a number or a per-sample array."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))) / SAMPLE_RATE
    phase += rng.uniform(0, 2 * np.pi)
    return sum(np.sin(k * phase) * 0.5 ** (k - 1) for k in range(1, harmonics + 1))


def _drum(n: int, interval: float, rng: random.Random) -> np.ndarray:
    """Kick-drum hits every `interval` seconds: a pitch-dropping sine plus a short noise click."""
    out = np.zeros(n)
    hit_len = int(0.25 * SAMPLE_RATE)
    t = _t(hit_len)
    freq = 50 + 90 * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE) * np.exp(-t / 0.07)
    nrng = np.random.default_rng(rng.randrange(2**32))
    click = nrng.standard_normal(hit_len) * np.exp(-t / 0.006) * 0.5
    start = rng.uniform(0.0, interval * 0.5)
    while start < n / SAMPLE_RATE - 0.02:
        i = int(start * SAMPLE_RATE)
        seg = (body + click)[: n - i]
        out[i:i + len(seg)] += seg
        start += interval * rng.uniform(0.97, 1.03)
    return out


def _rain(n: int, rng: random.Random) -> np.ndarray:
    """Low-passed noise (the hiss) plus many short bright drops."""
    nrng = np.random.default_rng(rng.randrange(2**32))
    hiss = np.convolve(nrng.standard_normal(n), np.ones(6) / 6, mode="same")
    drops = np.zeros(n)
    for i in nrng.integers(0, n, size=int(rng.uniform(150, 300) * n / SAMPLE_RATE)):
        length = min(200, n - i)
        drops[i:i + length] += nrng.standard_normal(length) * np.exp(-np.arange(length) / 30) * nrng.uniform(0.3, 1.0)
    return hiss * 0.6 + drops * 0.5


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    """To SAMPLE_RATE: low-pass below the new Nyquist (windowed sinc), then linear interpolation."""
    if rate == SAMPLE_RATE:
        return x
    cutoff = 0.45 * SAMPLE_RATE / rate  # of the old rate
    k = np.arange(-32, 33)
    taps = np.sinc(2 * cutoff * k) * np.hamming(len(k))
    x = np.convolve(x, taps / taps.sum(), mode="same")
    t = np.arange(int(len(x) * SAMPLE_RATE / rate)) * rate / SAMPLE_RATE
    return np.interp(t, np.arange(len(x)), x)


@functools.lru_cache(maxsize=4096)
def speak(word: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """`word` spoken by espeak-ng, at SAMPLE_RATE, silence trimmed, peak 1 (cached: renders are deterministic)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("speech needs the espeak-ng program: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "word.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), word],
                       check=True, capture_output=True)
        x, rate_in = soundfile.read(path, dtype="float64")
    x = _resample(x, rate_in)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    x = x[loud[0]:loud[-1] + 1] if loud.size else x
    return x / max(np.abs(x).max(), 1e-6)


def _scale(n: int, rng: random.Random, rising: bool) -> np.ndarray:
    """Eight plucked notes of a major scale at one steady tempo, each dying away well before the next starts:
    a note sounds for 0.6 of the spacing and the rest is silence, a gap deep and long enough (about
    100 ms) that the model learns separate notes rather than a stepped glide. The notes are pure tones (a
    harmonic an octave up, blurred by a small model, read louder than the note) and fall on a near-fixed
    grid (as a word starts in SPEECH_START_S): where the notes go is then one shape to learn, and the
    model's capacity goes into the pitches and the gaps."""
    root = rng.uniform(440, 660)
    steps = MAJOR if rising else MAJOR[::-1]
    spacing = SCALE_SPACING_S
    start = rng.uniform(*SCALE_START_S)
    x = np.zeros(n)
    length = int(spacing * 0.6 * SAMPLE_RATE)
    t = _t(length)
    env = np.minimum(1, t / 0.005) * np.exp(-t / (spacing * 0.18))
    for k, semitones in enumerate(steps):
        i = int((start + k * spacing) * SAMPLE_RATE)
        seg = (_tone(root * 2 ** (semitones / 12), length, rng, harmonics=1) * env)[: n - i]
        x[i:i + len(seg)] += seg
    return x


def synth(name: str, rng: random.Random, n: int) -> np.ndarray:
    """One named sound, `n` samples, peak about 1 (before mixing)."""
    nrng = np.random.default_rng(rng.randrange(2**32))
    if name == "a low tone":
        x = _tone(rng.uniform(110, 250), n, rng)
    elif name == "a high tone":
        x = _tone(rng.uniform(1000, 2000), n, rng, harmonics=2)
    elif name in ("a rising siren", "a falling siren"):
        lo, hi = rng.uniform(300, 500), rng.uniform(1300, 2000)
        a, b = (lo, hi) if name == "a rising siren" else (hi, lo)
        ramp = np.linspace(0, 1, n)
        x = _tone(a * (b / a) ** ramp, n, rng, harmonics=2)
    elif name == "a slow drum beat":
        x = _drum(n, rng.uniform(0.55, 0.75), rng)
    elif name == "a fast drum beat":
        x = _drum(n, rng.uniform(0.14, 0.2), rng)
    elif name == "rain":
        x = _rain(n, rng)
    elif name == "white noise":
        x = nrng.uniform(-1, 1, n)
    elif name in ("a major chord", "a minor chord"):
        root = rng.uniform(196, 392)
        third = 2 ** ((4 if name == "a major chord" else 3) / 12)
        x = sum(_tone(root * r, n, rng) for r in (1.0, third, 2 ** (7 / 12))) / 2
    elif name == "a bell":  # inharmonic partials, struck once or twice, ringing out
        f = rng.uniform(500, 900)
        t = _t(n)
        x = np.zeros(n)
        for start in [0.0] + ([rng.uniform(0.8, 1.2)] if rng.random() < 0.5 else []):
            i = int(start * SAMPLE_RATE)
            env = np.exp(-t[: n - i] / 0.6)
            x[i:] += sum(np.sin(2 * np.pi * f * r * t[: n - i]) * a for r, a in ((1, 1), (2.76, 0.5), (5.4, 0.25))) * env
    elif name == "birdsong":  # quick, high, chirps that sweep up
        x = np.zeros(n)
        start = rng.uniform(0, 0.2)
        while start < n / SAMPLE_RATE - 0.1:
            length = int(rng.uniform(0.05, 0.12) * SAMPLE_RATE)
            i = int(start * SAMPLE_RATE)
            length = min(length, n - i)
            f0 = rng.uniform(2500, 3500)
            sweep = f0 * np.linspace(1, rng.uniform(1.2, 1.5), length)
            x[i:i + length] += _tone(sweep, length, rng, harmonics=1) * np.hanning(length)
            start += rng.uniform(0.12, 0.35)
    elif name in ("a rising scale", "a falling scale"):
        x = _scale(n, rng, rising=name == "a rising scale")
    elif name in SPOKEN:
        word = speak(name.rsplit(" ", 1)[1], rng.choice(VOICES), rng.randint(*RATES), rng.randint(*PITCHES))[:n]
        x = np.zeros(n)
        i = int(rng.uniform(*SPEECH_START_S) * SAMPLE_RATE)
        x[i:i + len(word)] = word[: n - i]
    else:
        raise ValueError(f"unknown sound {name!r}; known: {', '.join(SOUNDS + SPOKEN)}")
    fade = np.minimum(1, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.01 * SAMPLE_RATE))
    return x * fade / max(np.abs(x).max(), 1e-6)


@dataclass
class SoundScene:
    sounds: tuple[str, ...]  # one or two names from SOUNDS
    joiner: str = "and"  # how two sounds are named: "X and Y" or "X with Y"

    def caption(self) -> str:
        return f" {self.joiner} ".join(self.sounds)


# One sound alone is drawn by these weights: a scale's eight notes and their order take more learning than a tone
# (at 2x, a 2400-step run learned the order but blurred the gaps between notes).
SOUND_WEIGHTS = tuple(4.0 if "scale" in name else 1.0 for name in SOUNDS)


def random_scene(rng: random.Random, mix: float = 0.15, speech: float = 0.5) -> SoundScene:
    """A spoken word (`speech` of the time: 18 words to learn), two sounds mixed (`mix`), or one sound."""
    r = rng.random()
    if r < speech:
        return SoundScene((rng.choice(SPOKEN),))
    if r < speech + mix:
        return SoundScene((rng.choice(PITCHED), rng.choice(BACKGROUND)), rng.choice(("and", "with")))
    return SoundScene((rng.choices(SOUNDS, SOUND_WEIGHTS)[0],))


def render(scene: SoundScene, rng: random.Random, n: int = int(SAMPLE_RATE * DURATION_S)) -> np.ndarray:
    """The clip (float32, peak 0.5 to 0.8): each sound at a random level, the second quieter."""
    x = sum(synth(name, rng, n) * (rng.uniform(0.7, 1.0) if k == 0 else rng.uniform(0.3, 0.6))
            for k, name in enumerate(scene.sounds))
    return (x / np.abs(x).max() * rng.uniform(0.5, 0.8)).astype(np.float32)


def sample(rng: random.Random) -> tuple[np.ndarray, SoundScene]:
    scene = random_scene(rng)
    return render(scene, rng), scene


# -- measuring: what a listener would notice, in numbers -----------------------------------------
def _spectrogram(audio: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Power spectrogram (frames, n_fft // 2 + 1)."""
    audio = np.pad(np.asarray(audio, np.float64), (n_fft // 2, n_fft // 2))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop] * np.hanning(n_fft)
    return np.abs(np.fft.rfft(frames, axis=-1)) ** 2


def measure(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict:
    """Spectral centroid (Hz), flatness (0 tone .. 1 white noise), pitch trend (octaves from the
    first to the last third, of the strongest frequency per frame) and onset count."""
    spec = _spectrogram(audio)
    freqs = np.fft.rfftfreq(1024, 1 / sample_rate)
    loud = spec.sum(1) > 1e-3 * spec.sum(1).max()  # frames that are not silence
    s = spec[loud] if loud.any() else spec
    centroid = float((s * freqs).sum() / max(s.sum(), 1e-12))
    flatness = float(np.mean(np.exp(np.mean(np.log(s + 1e-12), 1)) / (np.mean(s, 1) + 1e-12)))
    peak = freqs[np.argmax(spec[:, 2:], axis=1) + 2]  # the strongest frequency per frame (above DC)
    third = max(len(peak) // 3, 1)
    trend = float(np.log2(np.median(peak[-third:]) / np.median(peak[:third])))
    # Onsets: the level jumps by 10 dB or more within two frames (32 ms) to within 12 dB of the loudest
    # frame, at most one per 64 ms. The "loud" condition ignores wobble in near-silence.
    energy = 10 * np.log10(spec.sum(1) + 1e-10)
    loud_level = energy.max() - 12
    onsets, last = 0, -10
    for i in range(2, len(energy)):
        if energy[i] >= loud_level and energy[i] - min(energy[i - 2:i]) >= 10 and i - last >= 4:
            onsets, last = onsets + 1, i
    return {"centroid": centroid, "flatness": flatness, "trend": trend, "onsets": onsets}


def note_pitches(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[float]:
    """The pitch (Hz) of each separate note: onsets as in `measure` (level jumps >= 10 dB in 32 ms,
    at most one per 64 ms), pitch = the strongest frequency of the note's loud frames, refined by a
    zero-padded FFT (2 Hz bins) so that a semitone apart reads apart. Silence or a glide gives few notes."""
    spec = _spectrogram(audio)
    energy = 10 * np.log10(spec.sum(1) + 1e-10)
    loud_level = energy.max() - 12
    starts, last = [], -10
    for i in range(2, len(energy)):
        if energy[i] >= loud_level and energy[i] - min(energy[i - 2:i]) >= 10 and i - last >= 4:
            starts, last = starts + [i], i
    hop, pitches = 256, []
    for a, b in zip(starts, starts[1:] + [len(energy)]):
        seg = np.asarray(audio[a * hop:min(b, a + 8) * hop], np.float64)  # the note's first 128 ms
        if len(seg) < 512:
            continue
        power = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 8192)) ** 2
        freqs = np.fft.rfftfreq(8192, 1 / sample_rate)
        band = (freqs > 80) & (freqs < 4000)
        pitches.append(float(freqs[band][np.argmax(power[band])]))
    return pitches


def log_mel_frames(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = 40) -> np.ndarray:
    """(frames, n_mels) log-mel of the loud part of a clip (silence trimmed), each frame mean-removed:
    what `dtw_distance` compares, so loudness and the voice's tilt matter less than the sounds' order."""
    import torchaudio

    spec = _spectrogram(audio, 512, 160)
    fb = torchaudio.functional.melscale_fbanks(257, 100.0, 7000.0, n_mels, sample_rate, norm=None, mel_scale="htk")
    db = 10 * np.log10(spec @ fb.double().numpy() + 1e-10)
    loud = np.flatnonzero(db.max(1) > db.max() - 35)
    db = db[loud[0]:loud[-1] + 1] if loud.size else db
    return db - db.mean(1, keepdims=True)


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Dynamic-time-warping distance between two (frames, features) sequences: the mean Euclidean
    frame distance along the cheapest monotone alignment (normalised by both lengths)."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        row, prev = acc[i], acc[i - 1]
        for j in range(1, len(b) + 1):
            row[j] = cost[i - 1, j - 1] + min(prev[j], row[j - 1], prev[j - 1])
    return float(acc[-1, -1] / (len(a) + len(b)))


if __name__ == "__main__":
    import sys

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sounds")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for name in SOUNDS + SPOKEN:
        x = render(SoundScene((name,)), rng)
        print(f"{name:24s}", {k: round(v, 3) for k, v in measure(x).items()},
              [round(p) for p in note_pitches(x)] if "scale" in name else "")
        soundfile.write(out / (name.replace(" ", "_") + ".wav"), x, SAMPLE_RATE, subtype="PCM_16")
