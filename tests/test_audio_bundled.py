"""The bundled audio model makes the sound the prompt names: checked by measuring the clip.

`training/sounds.py:measure` is the ear: spectral centroid, flatness, pitch trend, onset count.
Seeds here are used nowhere else (not in training, not in the other tests).
"""

import numpy as np
import pytest
from sounds import measure

from pipelines.audio import AudioPipeline
from pipelines.base import final
from pipelines.registry import get_spec, missing_message

SEEDS = (70_001, 70_002, 70_003, 70_004)
pytestmark = pytest.mark.skipif(missing_message("audio", get_spec("audio", "bundled")) is not None,
                                reason="the bundled audio model is not in this checkout")


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
