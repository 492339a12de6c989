"""The bundled text-diffusion model describes the picture its prompt names, writes the diffusion way, revises
what parallel decoding got wrong, and fills the gaps of a template.

Prompts come from training/descriptions.py with a generator seed used nowhere else (training draws
from seed 0); generation seeds are unseen too. A description is checked for what a reader would
check: the shape's colour right before its shape word, the position's word, the background colour.
"""

import random
import re

import numpy as np
import pytest
from descriptions import describe, prompt_parts, prompt_text, words
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


def unseen_prompts(n: int) -> list[tuple[dict, str]]:
    rng = random.Random(PROMPT_RNG)
    cases = []
    for _ in range(n):
        parts = prompt_parts(random_scene(rng), rng, drop=0.2)
        cases.append((parts, prompt_text(parts, rng)))
    return cases


def disagree(text: str) -> bool:
    """Two neighbouring words are the same: what tokens committed in the same step get wrong ("a red red background")."""
    w = words(text.lower())
    return any(a == b for a, b in zip(w, w[1:]))


def test_revision_mends_what_parallel_decoding_gets_wrong(model):
    """8 steps for 32 positions (4 tokens a step): with revision on, neighbours disagree in at most half as many
    descriptions, and they still name the picture."""
    before, after, results, revised = 0, 0, [], []
    for (parts, prompt), seed in zip(unseen_prompts(30), SEEDS):
        plain = final(model.stream(prompt, num_inference_steps=8, seed=seed))
        edited = final(model.stream(prompt, num_inference_steps=8, seed=seed, editing_threshold=0.5))
        before, after = before + disagree(plain.text), after + disagree(edited.text)
        results += checks(parts, edited.text).values()
        revised += [r for s in edited.steps for r in s.info["revised"]]
    print(f"\nneighbours disagree: {before}/30 without revision, {after}/30 with; checks {np.mean(results):.2f}; "
          f"{len(revised)} revisions, e.g. {revised[:3]}")
    assert before >= 4 and after <= before / 2 and np.mean(results) >= 0.9
    assert revised and all(r["token"] != r["previous"] and r["probability"] > 0.5 for r in revised)


def test_block_length_one_writes_like_an_llm(model):
    out = final(model.stream("a red square on the left", num_inference_steps=32, seed=91_600, block_length=1))
    assert [[c["position"] for c in s.info["committed"]] for s in out.steps] == [[p] for p in range(32)]
    assert out.text.startswith(("A", "The", "This", "In", "We", "There", "It", "Here", "One", "You", "Look", "Every"))
    assert "red square" in out.text and "left" in out.text


def test_the_whole_canvas_is_written_out_of_order(model):
    out = final(model.stream("a large green triangle at the bottom on a white background", num_inference_steps=16,
                             seed=91_700))
    order = [c["position"] for s in out.steps for c in s.info["committed"]]
    assert order != sorted(order) and sorted(order) == list(range(32))
    assert 1 <= out.run["settled_at"] <= len(out.steps) == 16
    assert [out.run["committed_at"][c["position"]] for c in out.steps[3].info["committed"]] == [4, 4]


def test_infilling_keeps_the_template_and_names_the_picture_from_both_sides(model):
    rng = random.Random(PROMPT_RNG + 1)
    kept, named = 0, 0
    for seed in SEEDS[:20]:
        parts = prompt_parts(random_scene(rng), rng, drop=0.0)
        text = describe(parts, rng, max_words=31)
        while "Over" in text or "Near" in text or "Up" in text or "Down" in text or "Right" in text or "At" in text:
            text = describe(parts, rng, max_words=31)
        gapped = {parts["colour"], parts["background"]}
        template = " ".join("_" if w in gapped else w for w in words(text))
        out = final(model.infill_stream(prompt_text(parts, rng), template, num_inference_steps=4, seed=seed))
        got = words(out.text)
        kept += all(a == b for a, b in zip(template.split(), got) if a != "_") and len(got) == len(template.split())
        named += all(checks(parts, out.text).values())
    assert kept == 20
    assert named >= 16, named


def test_a_template_with_a_word_it_never_learnt_is_refused(model):
    with pytest.raises(ValueError, match="never learnt: zebra") as error:
        final(model.infill_stream("a red circle", "A _ zebra."))
    assert error.value.field == "template"
