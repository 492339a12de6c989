"""Griffin-Lim against the learned vocoder, in one run, on material neither training used.

    python training/eval_vocoder.py --vocoder /tmp/tiny-sounds-vocoder   # a vocoder from training/train_vocoder.py
    python training/eval_vocoder.py --images docs/vocoder   # a model folder with its own; + spectrograms side by side

~12 minutes on 2 busy cores. With --vocoder, the model folder is copied to a temporary one with that vocoder as its
`vocoder` and its Griffin-Lim as `griffin_lim` (the layout a bundled learned vocoder would have).

Two parts, each clip rendered through both vocoders from the same mel:
1. Resynthesis (clean mels, the vocoder alone): spoken words in espeak-ng voices and rates that training/train_vocoder.py
   never used (HELD_OUT_VOICES at 120 and 210 words a minute), recognised as tests/test_audio_bundled.py does (the
   nearest of the 18 words' en-us / en-gb renderings by DTW on log-mel); pure tones, pitch read from the waveform
   (within a semitone?) and the share of their energy within a semitone of it; scales from sounds.py on new seeds.
2. Generated (the bundled diffusion model, then each vocoder), on seeds no training or test uses: spoken words (with
   the tests' references, and with references in the held-out voices), scales (>= 6 notes, steps the right way, pitch
   tracked from the waveform) and the named sounds' checks of training/eval_audio.py.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from eval_audio import NAMED, SOUND_CHECKS  # noqa: E402
from sounds import SAMPLE_RATE, WORDS, _scale, _spectrogram, dtw_distance, log_mel_frames, measure, note_pitches, speak  # noqa: E402
from train_vocoder import HELD_OUT_VOICES  # noqa: E402

from pipelines.audio import AudioPipeline  # noqa: E402
from pipelines.base import final  # noqa: E402
from pipelines.specs import ModelSpec  # noqa: E402

HELD_OUT_RATES = (120, 210)  # words a minute; the vocoder trained on 130-195, the audio model on 140-180
TONES = (110.0, 165.0, 247.0, 370.0, 523.0, 784.0, 1175.0, 1760.0, 2637.0)  # Hz, none on a mel band's centre


def nearest_word(audio: np.ndarray, refs: dict) -> str:
    frames = log_mel_frames(audio)
    dist = {w: min(dtw_distance(frames, r) for r in rs) for w, rs in refs.items()}
    return min(dist, key=dist.get)


def tone_pitch(audio: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(strongest frequency, power spectrum, its frequencies) of a steady tone, past its first 0.1 s (0.1 Hz bins)."""
    x = np.asarray(audio[1600:], np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 17)) ** 2
    freqs = np.fft.rfftfreq(1 << 17, 1 / SAMPLE_RATE)
    return float(freqs[np.argmax(power[freqs > 40]) + np.argmax(freqs > 40)]), power, freqs


def semitone_share(power: np.ndarray, freqs: np.ndarray, f: float) -> float:
    band = (freqs > f * 2 ** (-1 / 12)) & (freqs < f * 2 ** (1 / 12))
    return float(power[band].sum() / power.sum())


def scale_score(clips: list[tuple[np.ndarray, int]]) -> tuple[float, float, list]:
    """(share of clips with >= 6 notes, share of note-to-note steps the right way, the notes)."""
    enough, steps, notes = [], [], []
    for audio, sign in clips:
        pitches = note_pitches(audio)
        enough.append(len(pitches) >= 6)
        steps += [np.sign(b - a) == sign for a, b in zip(pitches, pitches[1:])]
        notes.append([round(p) for p in pitches])
    return float(np.mean(enough)), float(np.mean(steps or [0])), notes


def stft_db(audio: np.ndarray, f_max: float = 4000.0) -> np.ndarray:
    """(bins up to f_max, frames) power in dB: a 1024-point STFT, fine enough for harmonics to show."""
    return 10 * np.log10(_spectrogram(audio)[:, :int(f_max / (SAMPLE_RATE / 1024))].T + 1e-10)


def stft_image(db: np.ndarray, label: str, top: float, span: float = 70.0) -> Image.Image:
    """A spectrogram on a fixed scale (top - span .. top dB, the same for every panel of a figure), low at the bottom,
    in the colours of pipelines/audio.py:spectrogram_image, labelled."""
    x = np.clip((db - (top - span)) / span, 0, 1)[::-1]
    rgb = np.stack([np.clip(1.6 * x, 0, 1), np.clip(1.6 * x - 0.6, 0, 1) ** 1.2,
                    np.clip(0.5 + 0.5 * np.sin(3.2 * x + 0.3), 0, 1) * x], -1)
    image = Image.fromarray((rgb * 255).astype(np.uint8)).resize((db.shape[1] * 2, db.shape[0]), Image.BILINEAR)
    ImageDraw.Draw(image).text((6, 4), label, fill=(255, 255, 255))
    return image


def side_by_side(path: Path, title: str, pairs: list[tuple[str, np.ndarray]]) -> None:
    """Spectrograms of the same clip's renderings, left to right, on one dB scale (0-4 kHz, 70 dB)."""
    dbs = [stft_db(a) for _, a in pairs]
    top = max(float(d.max()) for d in dbs)
    images = [stft_image(d, f"{title}: {name}", top) for (name, _), d in zip(pairs, dbs)]
    out = Image.new("RGB", (sum(i.width for i in images) + 8 * (len(images) - 1), images[0].height), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + 8
    out.save(path, optimize=True)


def with_vocoder(model: Path, vocoder: Path) -> Path:
    """A temporary copy of a Griffin-Lim model folder with `vocoder` as its vocoder and Griffin-Lim as `griffin_lim`."""
    out = Path(tempfile.mkdtemp(prefix="audio-with-vocoder-"))
    shutil.copytree(model, out, dirs_exist_ok=True)
    index = json.loads((out / "model_index.json").read_text())
    if index["vocoder"][1] == "GriffinLimVocoder":
        shutil.move(out / "vocoder", out / "griffin_lim")
        index["griffin_lim"] = index["vocoder"]
    shutil.rmtree(out / "vocoder", ignore_errors=True)
    shutil.copytree(vocoder, out / "vocoder")
    index["vocoder"] = ["pipelines.mel_diffusion", json.loads((vocoder / "config.json").read_text())["_class_name"]]
    (out / "model_index.json").write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "tiny-sounds-audio"))
    p.add_argument("--vocoder", help="an IstftVocoder folder (training/train_vocoder.py --out) to use in --model")
    p.add_argument("--seeds", type=int, nargs="+", default=[90_001, 90_002], help="speech and named sounds")
    p.add_argument("--scale-seeds", type=int, nargs="+", default=[90_011, 90_012, 90_013, 90_014, 90_015, 90_016])
    p.add_argument("--only", choices=("resynthesis", "generated"), nargs="+", default=["resynthesis", "generated"])
    p.add_argument("--images", help="write side-by-side spectrogram PNGs (Griffin-Lim | vocoder) here")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    folder = with_vocoder(Path(args.model), Path(args.vocoder)) if args.vocoder else Path(args.model).resolve()
    model = AudioPipeline(ModelSpec(str(folder), "local", defaults={"duration_s": 2.0}), device="cpu")
    pipe = model.pipe
    assert not isinstance(pipe.vocoder, type(pipe.mel)), "this folder has no learned vocoder to compare"
    images = Path(args.images) if args.images else None
    if images:
        images.mkdir(parents=True, exist_ok=True)
    refs = {w: [log_mel_frames(speak(w, v)) for v in ("en-us", "en-gb")] for w in WORDS}
    print(f"vocoder: {type(pipe.vocoder).__name__}, {sum(p.numel() for p in pipe.vocoder.parameters()) / 1e6:.2f} M "
          f"parameters; Griffin-Lim {pipe.mel.config.n_iter} iterations", flush=True)

    def both(audio: np.ndarray) -> dict:
        """The clip's mel (as the pipeline computes it) through Griffin-Lim and through the vocoder."""
        mel = pipe.mel.encode(torch.from_numpy(np.asarray(audio, np.float32))[None])
        return {"griffin_lim": pipe.mel_to_audio(mel, len(audio), griffin_lim=True)[0].numpy(),
                "vocoder": pipe.mel_to_audio(mel, len(audio))[0].numpy()}

    if "resynthesis" in args.only:
        # 1a. Words in held-out voices and rates.
        right = {"original": 0, "griffin_lim": 0, "vocoder": 0}
        total = 0
        for word in WORDS:
            for voice in HELD_OUT_VOICES:
                for rate in HELD_OUT_RATES:
                    x = np.zeros(32768)
                    w = speak(word, voice, rate, 50)[:30000] * 0.7
                    x[1600:1600 + len(w)] = w
                    outs = {"original": x, **both(x)}
                    for k, a in outs.items():
                        right[k] += nearest_word(a, refs) == word
                    total += 1
                    if images and word == "seven" and voice == HELD_OUT_VOICES[0] and rate == HELD_OUT_RATES[0]:
                        side_by_side(images / "resynthesis-seven.png", f"'seven' ({voice}, {rate} wpm)",
                                     [("original", x), ("Griffin-Lim", outs["griffin_lim"]), ("vocoder", outs["vocoder"])])
        print(f"resynthesis, words in unseen voices {HELD_OUT_VOICES} at {HELD_OUT_RATES} wpm, recognised: "
              + ", ".join(f"{k} {v}/{total} ({v / total:.0%})" for k, v in right.items()), flush=True)
        # 1b. Pure tones.
        rows = {"griffin_lim": [], "vocoder": []}
        t = np.arange(32768) / SAMPLE_RATE
        for f in TONES:
            for k, a in both(0.5 * np.sin(2 * np.pi * f * t)).items():
                peak, power, freqs = tone_pitch(a)
                rows[k].append((abs(12 * np.log2(peak / f)), semitone_share(power, freqs, f)))
        for k, r in rows.items():
            err, share = np.array(r).T
            print(f"resynthesis, pure tones {TONES[0]:.0f}-{TONES[-1]:.0f} Hz, {k}: peak within a semitone "
                  f"{(err < 1).sum()}/{len(err)} (worst {err.max():.2f} semitones); energy within a semitone: "
                  f"mean {share.mean():.0%}, min {share.min():.0%}", flush=True)
        # 1c. Scales as sounds.py plays them, new seeds.
        clips = {"original": [], "griffin_lim": [], "vocoder": []}
        for seed in args.scale_seeds:
            for rising in (True, False):
                x = _scale(32768, random.Random(seed), rising) * 0.6
                for k, a in {"original": x, **both(x)}.items():
                    clips[k].append((a, 1 if rising else -1))
        for k, c in clips.items():
            enough, steps, _ = scale_score(c)
            print(f"resynthesis, scales, {k}: >= 6 notes {enough:.0%}, steps the right way {steps:.0%}", flush=True)
        print(f"({(time.time() - t0) / 60:.1f} min)", flush=True)

    if "generated" in args.only:
        def clip(prompt: str, seed: int) -> dict:
            out = final(model.stream(prompt, "", 2.0, 25, 3.0, seed, preview=False))
            return {"griffin_lim": out.griffin_lim, "vocoder": out.audio}

        # 2a. Spoken words: the tests' references, and references in the held-out voices at held-out rates.
        unseen = {w: [log_mel_frames(speak(w, v, r)) for v in HELD_OUT_VOICES[:2] for r in HELD_OUT_RATES] for w in WORDS}
        right = {(k, r): 0 for k in ("griffin_lim", "vocoder") for r in ("tests' refs", "unseen refs")}
        heard, total = {"griffin_lim": [], "vocoder": []}, 0
        for word in WORDS:
            for seed in args.seeds:
                outs = clip(f"a voice saying {word}", seed)
                total += 1
                for k, a in outs.items():
                    got = nearest_word(a, refs)
                    heard[k].append(f"{word}->{got}")
                    right[k, "tests' refs"] += got == word
                    right[k, "unseen refs"] += nearest_word(a, unseen) == word
                if images and word in ("seven", "green") and seed == args.seeds[0]:
                    side_by_side(images / f"generated-{word}.png", f"a voice saying {word} (seed {seed})",
                                 [("Griffin-Lim", outs["griffin_lim"]), ("vocoder", outs["vocoder"])])
        print("generated, spoken words recognised: " + ", ".join(f"{k} with the {r} {v}/{total} ({v / total:.0%})"
                                                                 for (k, r), v in right.items()), flush=True)
        for k, h in heard.items():
            print(f"  {k}: {' '.join(h)}", flush=True)
        # 2b. Scales, pitch tracked from each waveform.
        clips = {"griffin_lim": [], "vocoder": []}
        for name, sign in (("a rising scale", 1), ("a falling scale", -1)):
            for seed in args.scale_seeds:
                outs = clip(name, seed)
                for k, a in outs.items():
                    clips[k].append((a, sign))
                if images and seed == args.scale_seeds[0] and sign == 1:
                    side_by_side(images / "generated-rising-scale.png", f"{name} (seed {seed})",
                                 [("Griffin-Lim", outs["griffin_lim"]), ("vocoder", outs["vocoder"])])
        for k, c in clips.items():
            enough, steps, notes = scale_score(c)
            print(f"generated, scales, {k}: >= 6 notes {enough:.0%}, steps the right way {steps:.0%}: {notes}", flush=True)
        # 2c. The named sounds' checks.
        heard = {"griffin_lim": {}, "vocoder": {}}
        for name in NAMED:
            for seed in args.seeds:
                outs = clip(name, seed)
                for k, a in outs.items():
                    heard[k][name, seed] = measure(a)
                if images and name == "a low tone" and seed == args.seeds[0]:
                    side_by_side(images / "generated-low-tone.png", f"{name} (seed {seed})",
                                 [("Griffin-Lim", outs["griffin_lim"]), ("vocoder", outs["vocoder"])])
        for k, h in heard.items():
            results = {c: sum(bool(f(h, s)) for s in args.seeds) for c, f in SOUND_CHECKS.items()}
            tonal = np.mean([h[n, s]["flatness"] for n in ("a low tone", "a high tone") for s in args.seeds])
            print(f"generated, named sounds, {k}: {sum(results.values())}/{len(results) * len(args.seeds)}", results,
                  f"tones' spectral flatness (0 a pure tone .. 1 noise) {tonal:.4f}", flush=True)
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
