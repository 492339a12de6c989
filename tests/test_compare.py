"""Key differences, live: both models through the one step interface, on tiny models."""

import pytest

from pipelines.base import Step
from pipelines.compare import CompareOutput, compare_stream, knobs
from pipelines.image import ImagePipeline
from pipelines.registry import ModelSpec
from pipelines.text import TextPipeline


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
    d, l = out.records["diffusion"], out.records["llm"]
    assert [r["step"] for r in d] == [1, 2, 3] and all(r["forward_passes"] == 2 for r in d)  # CFG: two passes a step
    assert all({"step", "timestep", "seconds"} <= set(r) for r in d)
    for r in l:
        assert {"step", "token", "probability", "candidates", "seconds"} <= set(r)
        assert len(r["candidates"]) == 5 and {"token", "probability"} <= set(r["candidates"][0])


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
