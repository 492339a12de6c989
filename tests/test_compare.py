"""Key differences, live: both models through the one step interface, on tiny models."""

import pytest

from pipelines.base import Step, final
from pipelines.compare import CompareOutput, branch, compare_stream, cost, knobs, switch
from pipelines.image import ImagePipeline
from pipelines.specs import ModelSpec
from pipelines.text import TextPipeline
from pipelines.text_diffusion import TextDiffusionPipeline


@pytest.fixture(scope="module")
def pair(tiny_sd, tiny_llm):
    image = ImagePipeline(ModelSpec(tiny_sd, "test", {"width": 32, "height": 32, "guidance_scale": 3.0},
                                    {"width": (32, 64, 16), "height": (32, 64, 16)}), device="cpu")
    return image, TextPipeline(ModelSpec(tiny_llm, "test"), device="cpu")


def test_both_sides_stream_then_one_result(pair):
    items = list(compare_stream(*pair, "a red circle", num_inference_steps=3, max_new_tokens=5, seed=1))
    sides = [side for side, _ in items]
    assert sides[-1] == "done" and isinstance(items[-1][1], CompareOutput)
    assert sides.count("diffusion") == 3 and 1 <= sides.count("llm") <= 5
    assert all(isinstance(item, Step) for side, item in items[:-1])
    out = items[-1][1]
    assert out.image.size == (32, 32) and isinstance(out.text, str)
    d, lm = out.records["diffusion"], out.records["llm"]
    assert [r["step"] for r in d] == [1, 2, 3] and all(r["forward_passes"] == 2 for r in d)  # CFG: two passes a step
    assert all({"step", "timestep", "seconds"} <= set(r) for r in d)
    for r in lm:
        assert {"step", "token", "probability", "candidates", "seconds"} <= set(r)
        assert len(r["candidates"]) == 5 and {"token", "token_id", "probability"} == set(r["candidates"][0])


def test_bad_input_is_refused_before_anything_runs(pair):
    with pytest.raises(ValueError, match="`prompt`"):
        list(compare_stream(*pair, "  "))
    with pytest.raises(ValueError, match="`num_inference_steps`"):
        list(compare_stream(*pair, "a red circle", num_inference_steps=0))
    with pytest.raises(ValueError, match="`max_new_tokens`"):
        list(compare_stream(*pair, "a red circle", max_new_tokens=1000))


def test_leaving_early_cancels_both(pair):
    stream = compare_stream(*pair, "a red circle", num_inference_steps=40, max_new_tokens=200, seed=0)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    # both models are free again
    assert list(compare_stream(*pair, "a red circle", num_inference_steps=2, max_new_tokens=2))[-1][0] == "done"


def test_knobs_same_seed_three_settings(pair):
    out = knobs(*pair, "a red circle", seed=3, guidance_scales=(1.0, 4.0), temperatures=(0.0, 1.5), max_new_tokens=4)
    assert [g for g, _ in out["guidance"]] == [1.0, 4.0] and [t for t, _ in out["temperature"]] == [0.0, 1.5]
    assert out["guidance"][0][1].tobytes() != out["guidance"][1][1].tobytes()


@pytest.fixture(scope="module")
def text_diffusion(tiny_masked_chat):
    return TextDiffusionPipeline(ModelSpec(tiny_masked_chat, "test", {"gen_length": 16, "num_inference_steps": 4},
                                           {"gen_length": (8, 32, 8)}), device="cpu")


def test_three_lanes_share_one_stream(pair, text_diffusion):
    items = list(compare_stream(*pair, "a red circle", num_inference_steps=3, max_new_tokens=4, seed=1,
                                text_diffusion=text_diffusion))
    sides = [side for side, _ in items]
    assert sides.count("text_diffusion") == 4 and sides[-1] == "done"
    records = items[-1][1].records
    assert set(records) == {"diffusion", "text_diffusion", "llm"}
    td = records["text_diffusion"]
    assert [r["step"] for r in td] == [1, 2, 3, 4] and all(len(r["committed"]) == 4 for r in td)
    assert {"position", "token", "probability"} == set(td[0]["committed"][0]) and "seconds" in td[0]


@pytest.mark.parametrize("step, candidate", [(1, 2), (3, 5), (4, 1)])
def test_a_branch_keeps_the_tokens_before_its_step_and_takes_the_chosen_candidate(pair, step, candidate):
    compared = list(compare_stream(*pair, "a red circle", num_inference_steps=2, max_new_tokens=6, seed=5))[-1][1]
    llm = compared.records["llm"]
    text, records = branch(pair[1], "a red circle", step, candidate, max_new_tokens=6, seed=5)
    assert [r["token"] for r in records[:step - 1]] == [r["token"] for r in llm[:step - 1]]
    assert records[step - 1]["token"] == llm[step - 1]["candidates"][candidate - 1]["token"]
    assert [r["step"] for r in records] == list(range(1, len(records) + 1)) and len(records) <= 6
    assert set(llm[0]) <= set(records[0])  # the llm records' format
    assert text.startswith("".join(r["token"] for r in records[:step]).strip()[:3])
    with pytest.raises(ValueError, match="`candidate`"):
        branch(pair[1], "a red circle", 1, 6, max_new_tokens=6)


def test_switching_the_prompt_changes_the_steps_after_the_switch(pair):
    image = pair[0]
    plain = {p: final(image.stream(p, "", 4, 3.0, 2, 32, 32, preview=False)).image.tobytes()
             for p in ("a red circle", "a blue square")}
    at = {k: switch(image, "a red circle", "a blue square", k, 4, 2).image.tobytes() for k in (1, 3)}
    assert at[1] == plain["a blue square"]  # switched before the first step: the second prompt all along
    assert at[3] not in plain.values()  # two steps of each
    with pytest.raises(ValueError, match="`switch_step`"):
        switch(image, "a red circle", "a blue square", 5, 4, 2)
    with pytest.raises(ValueError, match="`prompt_after`"):
        switch(image, "a red circle", "", 2, 4, 2)


def test_cost_llm_passes_grow_with_tokens_diffusion_passes_do_not(pair, text_diffusion):
    rows = cost(*pair, text_diffusion)
    by = lambda m: [r for r in rows if r["model"] == m]  # noqa: E731
    assert len({r["forward_passes"] for r in by("image diffusion")}) == 1 and len(by("image diffusion")) >= 2
    assert len({r["forward_passes"] for r in by("text diffusion")}) == 1 and len(by("text diffusion")) == 3
    llm = [r["forward_passes"] for r in by("LLM")]
    assert llm == sorted(llm) and llm[-1] > llm[0]
