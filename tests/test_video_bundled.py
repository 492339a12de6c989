"""The bundled video model moves what the prompt names, the way the prompt says: checked by tracking the object.

`training/clips.py:track` finds the background (the first frame's border colour) and the object (the
pixels far from it) in every frame; `motion_of` reads the motion from the first and last frames (the
centre moved 6 px or more: the larger of dx, dy names the direction; otherwise the area grew or shrank
1.5x). It reads training clips back 100% right. Clips and seeds here are used nowhere else.
"""

import random
from collections import Counter

import numpy as np
import pytest
from clips import MOTIONS, motion_of, random_clip, track

from pipelines.base import final
from pipelines.presets import get_spec
from pipelines.specs import missing_message
from pipelines.video import VideoPipeline

pytestmark = [pytest.mark.skipif(missing_message("video", get_spec("video", "bundled")) is not None,
                                reason="the bundled video model is not in this checkout"), pytest.mark.slow]


@pytest.fixture(scope="module")
def model() -> VideoPipeline:
    return VideoPipeline(get_spec("video", "bundled"), device="cpu")


def test_the_object_has_the_colour_and_moves_the_way_asked(model):
    """Every motion four times, captions as users write them (size, colour, background may be left
    out); the colour is checked when the caption names it, the motion always."""
    rng = random.Random(20261128)
    results, misses = {"colour": [], "motion": []}, []
    for i, motion in enumerate(list(MOTIONS) * 4):
        clip = random_clip(rng)
        clip.motion = motion
        caption = clip.caption(rng, drop=0.25)
        frames = final(model.stream(caption, seed=95_000 + i, preview=False)).frames
        seen = [s for s in track(frames) if s is not None]
        colour = Counter(s["colour"] for s in seen).most_common(1)[0][0] if seen else None
        moved = motion_of(frames)
        named = clip.colour in caption.split(clip.shape)[0].split()  # the object's colour, not the background's
        if named:
            results["colour"].append(colour == clip.colour)
        results["motion"].append(moved == motion)
        if moved != motion or (named and colour != clip.colour):
            misses.append((caption, colour, moved))
    rates = {check: round(float(np.mean(r)), 3) for check, r in results.items()}
    overall = float(np.mean([v for r in results.values() for v in r]))
    print("bundled video model, right per check:", rates, "overall", round(overall, 3), "misses:", misses)
    assert overall >= 0.8, (rates, misses)
    assert rates["motion"] >= 0.7, (rates, misses)


def test_opposite_words_move_the_same_start_opposite_ways(model):
    """Same seed (same starting noise), "left" vs "right" and "up" vs "down": the motion follows the words."""
    for a, b, axis in (("moving left", "moving right", 0), ("moving up", "moving down", 1)):
        for seed in (96_000, 96_001):
            shift = {}
            for motion in (a, b):
                seen = track(final(model.stream(f"a large white square {motion} on a black background", seed=seed,
                                                preview=False)).frames)
                assert seen[0] is not None and seen[-1] is not None, (motion, seed, seen)
                shift[motion] = seen[-1]["centre"][axis] - seen[0]["centre"][axis]
            assert shift[a] < 0 < shift[b], (seed, shift)
