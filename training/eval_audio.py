"""Score an audio model folder (a training snapshot, say) the way tests/test_audio_bundled.py does, on
seeds of your choice, so a training run can be judged on seeds the tests never use.

    python training/eval_audio.py /tmp/audio-new-snapshot --seeds 80001 80002

Prints, per check, how many clips passed: the spoken words (DTW-nearest of the 18 to espeak-ng's
en-us / en-gb renderings), the scales (>= 6 notes, steps the right way) and the named sounds'
measurements (as test_the_sounds_mean_what_their_names_say). `--save DIR` writes each clip's WAV and
spectrogram PNG, to look at and listen to.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from sounds import WORDS, dtw_distance, log_mel_frames, measure, note_pitches, speak  # noqa: E402

from pipelines.audio import AudioPipeline, render_clip  # noqa: E402
from pipelines.base import final  # noqa: E402
from pipelines.specs import ModelSpec  # noqa: E402

SOUND_CHECKS = {
    "high above low": lambda h, s: h["a high tone", s]["centroid"] > 2 * h["a low tone", s]["centroid"],
    "rising siren rises": lambda h, s: h["a rising siren", s]["trend"] > 0.3,
    "falling siren falls": lambda h, s: h["a falling siren", s]["trend"] < -0.3,
    "fast drum > slow": lambda h, s: h["a fast drum beat", s]["onsets"] > h["a slow drum beat", s]["onsets"],
    "rain flat": lambda h, s: h["rain", s]["flatness"] > 5 * h["a low tone", s]["flatness"],
    "noise flat": lambda h, s: h["white noise", s]["flatness"] > 5 * h["a high tone", s]["flatness"],
}
NAMED = ("a low tone", "a high tone", "a rising siren", "a falling siren", "a slow drum beat", "a fast drum beat",
         "rain", "white noise")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a MelDiffusionPipeline folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[80_001, 80_002])
    p.add_argument("--only", choices=("speech", "scales", "sounds"), nargs="+", default=["speech", "scales", "sounds"])
    p.add_argument("--save", help="write WAV + spectrogram PNG of every clip here")
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale (the tests use 3.0)")
    args = p.parse_args()
    model = AudioPipeline(ModelSpec(str(Path(args.model).resolve()), "local", defaults={"duration_s": 2.0}),
                          device="cpu")
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)

    def clip(prompt: str, seed: int) -> np.ndarray:
        audio = final(model.stream(prompt, "", 2.0, 25, args.guidance, seed, preview=False)).audio
        if save:
            wav, image = render_clip(audio, 16000, prompt)
            stem = f"{prompt.replace(' ', '_')}-{seed}"
            (save / f"{stem}.wav").write_bytes(wav)
            image.save(save / f"{stem}.png")
        return audio

    if "speech" in args.only:
        refs = {w: [log_mel_frames(speak(w, v)) for v in ("en-us", "en-gb")] for w in WORDS}
        right, heard = 0, []
        for word in WORDS:
            for seed in args.seeds:
                frames = log_mel_frames(clip(f"a voice saying {word}", seed))
                dist = {w: min(dtw_distance(frames, r) for r in rs) for w, rs in refs.items()}
                nearest = min(dist, key=dist.get)
                right += nearest == word
                heard.append(f"{word}->{nearest}")
        print(f"speech: {right} of {len(heard)}:", " ".join(heard), flush=True)
    if "scales" in args.only:
        steps, enough, notes = [], 0, []
        for name, sign in (("a rising scale", 1), ("a falling scale", -1)):
            for seed in args.seeds:
                pitches = note_pitches(clip(name, seed))
                enough += len(pitches) >= 6
                steps += [np.sign(b - a) == sign for a, b in zip(pitches, pitches[1:])]
                notes.append(f"{name.split()[1]}:{[round(x) for x in pitches]}")
        print(f"scales: {enough} of {len(notes)} with >= 6 notes, steps right {np.mean(steps or [0]):.2f}:",
              " ".join(notes), flush=True)
    if "sounds" in args.only:
        heard = {(n, s): measure(clip(n, s)) for n in NAMED for s in args.seeds}
        results = {k: sum(bool(f(heard, s)) for s in args.seeds) for k, f in SOUND_CHECKS.items()}
        total = sum(results.values()) / (len(results) * len(args.seeds))
        print(f"sounds: {total:.2f}", results, flush=True)


if __name__ == "__main__":
    main()
