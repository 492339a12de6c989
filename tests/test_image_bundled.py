"""The bundled image model draws what the prompt asks: checked by reading the picture back.

`training/shapes.py:describe` finds the background (border colour), the object (the largest region
far from it), its colour, shape (best-matching template), and position; it reads the training
renders back 100% right. Scenes and seeds here are used nowhere else (not in training, not in the
other tests).
"""

import random

import numpy as np
import pytest
from shapes import COLOURS, POSITIONS, describe, random_scene

from pipelines.base import final
from pipelines.image import ImagePipeline
from pipelines.presets import get_spec
from pipelines.specs import missing_message

CHECKS = ("colour", "background", "shape", "position")
pytestmark = [pytest.mark.skipif(missing_message("image", get_spec("image", "bundled")) is not None,
                                reason="the bundled image model is not in this checkout"), pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> ImagePipeline:
    return ImagePipeline(get_spec("image", "bundled"), device="cpu")


def generate(model, prompt, seed, guidance_scale=None, negative_prompt=""):
    if guidance_scale is None:  # what the Image tab starts with
        guidance_scale = get_spec("image", "bundled").defaults["guidance_scale"]
    return final(model.stream(prompt, negative_prompt, 25, guidance_scale, seed, 64, 64, preview=False)).image


def test_it_draws_the_colour_background_shape_and_position_asked_for(model):
    """Captions as users write them: each part may be left out ("a green square"); every part that
    the caption names is checked, and the shape always."""
    rng = random.Random(20261127)
    results = {check: [] for check in CHECKS}
    for i in range(32):
        scene = random_scene(rng)
        caption = scene.caption(rng, drop=0.25)
        seen = describe(generate(model, caption, seed=90_000 + i))
        named = {"colour": scene.colour in caption.split()[:3], "background": "background" in caption,
                 "shape": True, "position": POSITIONS[scene.position][0] in caption}
        for check in CHECKS:
            if named[check]:
                results[check].append(seen[check] == getattr(scene, check))
    rates = {check: round(float(np.mean(r)), 3) for check, r in results.items()}
    overall = float(np.mean([v for r in results.values() for v in r]))
    print("bundled image model, right per check:", rates, "overall", round(overall, 3))
    assert overall >= 0.8, rates
    assert min(rates.values()) > 1 / 3, rates  # every attribute better than a guess among three


def redness(image) -> float:
    seen = describe(image)
    arr = np.asarray(image, dtype=np.float32)
    bg = np.asarray(COLOURS[seen["background"]], np.float32)
    mask = np.sqrt(((arr - bg) ** 2).sum(-1)) > 50
    obj = arr[mask] if mask.any() else arr.reshape(-1, 3)
    return float(np.mean(obj[:, 0] - (obj[:, 1] + obj[:, 2]) / 2))


def test_guidance_and_negative_prompt_steer_the_picture(model):
    # Guidance: the guided picture differs from the unguided one and still shows what was asked.
    rng = random.Random(4242)
    for i in range(4):
        scene = random_scene(rng)
        guided = generate(model, scene.caption(), 92_000 + i, guidance_scale=3.0)
        plain = np.asarray(generate(model, scene.caption(), 92_000 + i, guidance_scale=1.0), dtype=np.float32)
        assert np.abs(np.asarray(guided, dtype=np.float32) - plain).mean() > 1.0
        seen = describe(guided)
        assert (seen["colour"], seen["background"]) == (scene.colour, scene.background), (scene, seen)
    # Negative prompt: "red" as the negative prompt makes objects of no named colour less red.
    plain = [redness(generate(model, "a large circle on a black background", 93_000 + s)) for s in range(6)]
    steered = [redness(generate(model, "a large circle on a black background", 93_000 + s, negative_prompt="red"))
               for s in range(6)]
    assert np.mean(steered) < np.mean(plain), (plain, steered)
