"""The bundled text-diffusion model describes the picture its prompt names, and it writes the diffusion way.

Prompts come from training/descriptions.py with a generator seed used nowhere else (training draws
from seed 0); generation seeds are unseen too. A description is checked for what a reader would
check: the shape's colour right before its shape word, the position's word, the background colour.
"""

import random
import re

import numpy as np
import pytest
from descriptions import prompt_parts, prompt_text
from shapes import random_scene

from pipelines.base import final
from pipelines.presets import get_spec
from pipelines.specs import missing_message
from pipelines.text_diffusion import MASK_GLYPH, TextDiffusionPipeline

pytestmark = [pytest.mark.skipif(missing_message("text_diffusion", get_spec("text_diffusion", "bundled")) is not None,
                                reason="the bundled text-diffusion model is not in this checkout"), pytest.mark.slow]
PROMPT_RNG = 90_001  # training samples from random.Random(0)
SEEDS = range(91_000, 91_030)


def checks(parts: dict, text: str) -> dict[str, bool]:
    """Which of the prompt's parts the description names right."""
    t = text.lower()
    result = {"shape": re.search(rf"\b{parts['shape']}\b", t) is not None}
    if "colour" in parts:
        result["colour"] = re.search(rf"\b{parts['colour']} {parts['shape']}\b", t) is not None
    if "position" in parts:
        result["position"] = re.search(rf"\b{parts['position']}\b", t) is not None
    if "background" in parts:
        bg = parts["background"]
        result["background"] = re.search(rf"\b{bg} background\b|\bbackground is {bg}\b", t) is not None
    return result


@pytest.fixture(scope="module")
def model():
    return TextDiffusionPipeline(get_spec("text_diffusion", "bundled"), device="cpu")


def test_descriptions_name_what_the_prompt_names(model):
    rng = random.Random(PROMPT_RNG)
    results, shown = [], []
    for seed in SEEDS:
        parts = prompt_parts(random_scene(rng), rng, drop=0.2)
        prompt = prompt_text(parts, rng)
        text = final(model.stream(prompt, seed=seed)).text
        result = checks(parts, text)
        results += result.values()
        shown.append(f"{prompt!r} -> {text!r} {result}")
    rate = float(np.mean(results))
    print("\n".join(shown[:8]), f"\nbundled text diffusion: {rate:.2f} of {len(results)} checks right")
    assert rate >= 0.8, "\n".join(shown)


def test_it_commits_several_positions_per_step_in_any_order(model):
    out = final(model.stream("a large green triangle at the bottom on a white background", seed=91_500))
    several = any(len(s.info["committed"]) >= 2 for s in out.steps)
    right_of_a_mask = any(MASK_GLYPH in s.info["canvas"][:c["position"]] for s in out.steps for c in s.info["committed"])
    assert several and right_of_a_mask, [[c["position"] for c in s.info["committed"]] for s in out.steps]
    assert MASK_GLYPH not in out.text and out.steps[-1].info["masks_left"] == 0
