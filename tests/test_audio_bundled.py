"""The bundled audio model makes the sound the prompt names: checked by measuring the clip.

Spoken words are checked against espeak-ng's own renderings (apt-get install espeak-ng), scales by
reading each note's pitch.

`training/sounds.py:measure` is the ear: spectral centroid, flatness, pitch trend, onset count.
Seeds here are used nowhere else (not in training, not in the other tests).
"""

import shutil

import numpy as np
import pytest
from sounds import WORDS, dtw_distance, log_mel_frames, measure, note_pitches, speak

from pipelines.audio import AudioPipeline
from pipelines.base import final
from pipelines.presets import get_spec
from pipelines.specs import known_words, missing_message

SEEDS = (70_001, 70_002, 70_003, 70_004)
pytestmark = [pytest.mark.skipif(missing_message("audio", get_spec("audio", "bundled")) is not None,
                                reason="the bundled audio model is not in this checkout"), pytest.mark.slow]


@pytest.fixture(scope="module")
def heard():
    model = AudioPipeline(get_spec("audio", "bundled"), device="cpu")
    names = ("a low tone", "a high tone", "a rising siren", "a falling siren", "a slow drum beat", "a fast drum beat",
             "rain", "white noise")

    def hear(name, seed):
        out = final(model.stream(name, "", 2.0, 25, 3.0, seed, preview=False))
        assert out.audio.shape == (32000,) and np.isfinite(out.audio).all()
        return measure(out.audio, out.sample_rate)

    return {(name, seed): hear(name, seed) for name in names for seed in SEEDS}


def test_the_sounds_mean_what_their_names_say(heard):
    checks = {
        "high tones sit clearly above low tones": lambda s: heard["a high tone", s]["centroid"]
        > 2 * heard["a low tone", s]["centroid"],
        "rising sirens rise": lambda s: heard["a rising siren", s]["trend"] > 0.3,
        "falling sirens fall": lambda s: heard["a falling siren", s]["trend"] < -0.3,
        "fast drum beats have more onsets than slow ones": lambda s: heard["a fast drum beat", s]["onsets"]
        > heard["a slow drum beat", s]["onsets"],
        "rain is flatter than a tone": lambda s: heard["rain", s]["flatness"] > 5 * heard["a low tone", s]["flatness"],
        "white noise is flatter than a tone": lambda s: heard["white noise", s]["flatness"]
        > 5 * heard["a high tone", s]["flatness"],
    }
    results = {name: [bool(check(s)) for s in SEEDS] for name, check in checks.items()}
    rate = float(np.mean([r for rs in results.values() for r in rs]))
    print("bundled audio model:", {k: sum(v) for k, v in results.items()}, f"of {len(SEEDS)} each; overall {rate:.2f}")
    assert rate >= 0.8, results


SPEECH_SEEDS = (70_101, 70_102)
speaks = pytest.mark.skipif("saying" not in (known_words(get_spec("audio", "bundled").model_id) or []),
                            reason="the bundled audio model in this checkout was trained before speech (make train-audio)")
espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                            reason="no espeak-ng here (make test installs it with apt-get, which needs root): the spoken "
                                   "words are compared with its renderings")


@pytest.fixture(scope="module")
def model():
    return AudioPipeline(get_spec("audio", "bundled"), device="cpu")


def clip(model, prompt: str, seed: int) -> np.ndarray:
    return final(model.stream(prompt, "", 2.0, 25, 3.0, seed, preview=False)).audio


@speaks
@espeak
def test_a_voice_says_the_word(model):
    """Each generated word is nearer, by dynamic time warping of log-mels, to espeak-ng's renderings of
    that word (two voices) than to those of the other 17 words."""
    references = {w: [log_mel_frames(speak(w, voice)) for voice in ("en-us", "en-gb")] for w in WORDS}
    right, heard = [], []
    for word in WORDS:
        for seed in SPEECH_SEEDS:
            frames = log_mel_frames(clip(model, f"a voice saying {word}", seed))
            distances = {w: min(dtw_distance(frames, r) for r in refs) for w, refs in references.items()}
            nearest = min(distances, key=distances.get)
            right.append(nearest == word)
            heard.append(f"{word}->{nearest}")
    rate = float(np.mean(right))
    print(f"spoken words recognised: {sum(right)} of {len(right)} ({rate:.2f}):", " ".join(heard))
    assert rate >= 0.7, heard


@speaks
def test_scales_are_separate_notes_going_the_right_way(model):
    right, notes = [], []
    for name, sign in (("a rising scale", 1), ("a falling scale", -1)):
        for seed in SEEDS:
            pitches = note_pitches(clip(model, name, seed))
            notes.append((name, seed, [round(p) for p in pitches]))
            assert len(pitches) >= 6, notes[-1]
            right += [np.sign(b - a) == sign for a, b in zip(pitches, pitches[1:])]
    rate = float(np.mean(right))
    print(f"scale steps the right way: {rate:.2f}", notes)
    assert rate >= 0.8, notes
