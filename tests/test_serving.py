"""Holding up under real use: bounded work per request, no files left behind, no two outputs sharing a file."""

import os
import time

from pipelines.base import OUTPUT_TTL_S, final, output_path
from pipelines.specs import ModelSpec
from pipelines.text import TextPipeline
from pipelines.translation import Translation
from pipelines.understanding import MAX_ENTITY_SPANS, Understanding


def test_entities_type_a_bounded_number_of_spans(tiny_llm):
    text = " ".join(f"Name{i} met Person{i}." for i in range(60))  # 120 capitalised spans, under 2,000 characters
    model = Understanding(TextPipeline(ModelSpec(tiny_llm, "test"), device="cpu"))
    assert len(model.entity_spans(text)) == 120
    out = model.understand(text, "entities")
    assert len(out["entities"]) == MAX_ENTITY_SPANS and out["spans_not_typed"] == 120 - MAX_ENTITY_SPANS


def test_a_stopped_understand_request_stops_its_work(tiny_llm):
    """/understand streams its progress, so a client that leaves (or Stop) ends the work at the next span."""
    text = " ".join(f"Name{i} met Person{i}." for i in range(60))
    model = Understanding(TextPipeline(ModelSpec(tiny_llm, "test"), device="cpu"))
    typed = []
    classify = model._classify
    model._classify = lambda *args, **kwargs: typed.append(args[0]) or classify(*args, **kwargs)
    stream = model.stream(text, "entities")
    first = next(stream)
    assert (first.index, first.total, first.info["done"]) == (1, MAX_ENTITY_SPANS, "Name0")
    stream.close()  # the worker stops at its next span
    assert len(typed) <= 2  # of the 24 spans it would type
    summary = [s for s in model.stream("A short text about rain.", "summary") if hasattr(s, "info")]
    assert summary and summary[-1].total == 60 and all(s.info["task"] == "summary" for s in summary)


def test_a_short_sentence_gets_a_short_translation(tiny_llm):
    model = TextPipeline(ModelSpec(tiny_llm, "test"), device="cpu")
    tokens = len(model.engine.encode("hello world"))
    out = final(Translation(model).stream("hello world", "English", "French"))  # a random tiny model never stops by itself
    assert len(out.steps) <= 2 * tokens + 16 < 256


def test_output_files_are_fresh_and_old_ones_are_removed():
    first, second = output_path(".wav"), output_path(".wav")
    assert first != second and os.path.dirname(first) == os.path.dirname(second)
    old = time.time() - OUTPUT_TTL_S - 60
    os.utime(first, (old, old))
    output_path(".wav")
    assert not os.path.exists(first) and os.path.exists(second)


def test_two_identical_requests_never_make_the_same_file(tiny_mel, tiny_sd):
    """Gradio caches outputs by content: identical bytes would share one cached file, rewritten under a download."""
    from pipelines.audio import AudioPipeline, render_clip
    from pipelines.image import ImagePipeline

    audio = AudioPipeline(ModelSpec(tiny_mel, "test", limits={"duration_s": (0.1, 4.0)}), device="cpu")
    clips = [final(audio.stream("a high tone", "", 0.5, 2, 3.0, 5, preview=False)) for _ in range(2)]
    assert clips[0].recipe == clips[1].recipe and (clips[0].audio == clips[1].audio).all()
    assert render_clip(clips[0].audio, 16000, clips[0].recipe)[0] != render_clip(clips[1].audio, 16000, clips[1].recipe)[0]
    image = ImagePipeline(ModelSpec(tiny_sd, "test", {"width": 32, "height": 32},
                                    {"width": (32, 64, 16), "height": (32, 64, 16)}),
                          device="cpu")
    a, b = (final(image.stream("a red circle", "", 2, 3.0, 1, 32, 32, preview=False)).image for _ in range(2))
    assert a.tobytes() == b.tobytes() and a.info["Creation Time"] != b.info["Creation Time"]


def test_a_truncated_weights_file_is_named_and_only_that_model_fails(tiny_sd, tmp_path):
    import shutil

    import pytest

    from pipelines.image import ImagePipeline

    broken = tmp_path / "model"
    shutil.copytree(tiny_sd, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download cut short
    spec = lambda path: ModelSpec(path, "test", {"width": 32, "height": 32}, {"width": (32, 64, 16), "height": (32, 64, 16)})  # noqa: E731
    with pytest.raises(RuntimeError, match=r"unet/diffusion_pytorch_model\.safetensors is damaged"):
        final(ImagePipeline(spec(str(broken)), device="cpu").stream("a red circle", "", 2, 3.0, 0, 32, 32, preview=False))
    assert final(ImagePipeline(spec(tiny_sd), device="cpu").stream("a red circle", "", 2, 3.0, 0, 32, 32, preview=False)).image
