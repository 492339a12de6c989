"""Outputs carry their recipe: a PNG, a WAV and an MP4 made through the app's code paths (tiny models) hold
how they were made, and reading the file back gives the settings that make it again."""

import numpy as np
import pytest
from PIL import Image

from pipelines.audio import AudioPipeline, render_clip
from pipelines.base import final
from pipelines.image import ImagePipeline
from pipelines.recipe import parse_recipe, read_recipe, recipe_text, wav_info
from pipelines.specs import ModelSpec
from pipelines.video import write_mp4


def test_a_png_carries_its_recipe_as_automatic1111_writes_it(tiny_sd, tmp_path):
    image = ImagePipeline(ModelSpec(tiny_sd, "test", {"width": 32, "height": 32},
                                    {"width": (32, 64, 16), "height": (32, 64, 16)}),
                          device="cpu")
    args = dict(prompt="a red circle", negative_prompt="a blue square", num_inference_steps=2, guidance_scale=3.0,
                seed=11, width=32, height=32)
    out = final(image.stream(**args, preview=False))
    lines = out.recipe.split("\n")
    assert lines[:2] == ["a red circle", "Negative prompt: a blue square"]
    assert lines[2].startswith("Task: image, Steps: 2, CFG scale: 3.0, Seed: 11, Size: 32x32, Model: ")
    from gradio.processing_utils import save_pil_to_cache  # what gr.Image(format="png") does with our image

    cached = save_pil_to_cache(out.image, str(tmp_path), format="png")
    assert Image.open(cached).info["parameters"] == out.recipe
    settings = read_recipe(cached)
    assert settings == {**args, "task": "image", "model": tiny_sd}
    again = final(image.stream(**{k: settings[k] for k in args}, preview=False))
    assert again.image.tobytes() == out.image.tobytes()  # the recipe makes the same image


def test_a_wav_carries_its_recipe(tiny_mel, tmp_path):
    audio = AudioPipeline(ModelSpec(tiny_mel, "test", limits={"duration_s": (0.1, 4.0)}), device="cpu")
    out = final(audio.stream("a high tone", "a low tone", 0.5, 2, 3.0, 5, preview=False))
    wav, _ = render_clip(out.audio, out.sample_rate, out.recipe)
    path = tmp_path / "clip.wav"
    path.write_bytes(wav)
    info = wav_info(path)
    assert (info["title"], info["comment"]) == ("a high tone", out.recipe) and info["created"]
    import wave

    with wave.open(str(path)) as w:  # a plain 16-bit PCM WAV for every reader, not only soundfile
        assert (w.getframerate(), w.getnframes(), w.getsampwidth()) == (out.sample_rate, len(out.audio), 2)
    assert read_recipe(str(path)) == {"task": "audio", "prompt": "a high tone", "negative_prompt": "a low tone",
                                      "duration_s": 0.5, "num_inference_steps": 2, "guidance_scale": 3.0, "seed": 5,
                                      "model": tiny_mel}


def test_an_mp4_carries_its_recipe(tmp_path):
    recipe = recipe_text("video", "a red circle moving right", "", num_inference_steps=4, guidance_scale=4.0, seed=3,
                         num_frames=8, model="models/tiny-shapes-image")
    path = write_mp4([Image.new("RGB", (32, 32), (200, 0, 0))] * 8, 8, str(tmp_path / "clip.mp4"), comment=recipe)
    assert read_recipe(path) == parse_recipe(recipe)
    assert parse_recipe(recipe)["num_frames"] == 8


def test_files_without_a_recipe_are_refused_with_the_reason(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no recipe"):
        read_recipe(str(tmp_path / "plain.png"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="`file` must be a PNG, WAV or MP4"):
        read_recipe(str(tmp_path / "notes.txt"))
    (tmp_path / "fake.wav").write_bytes(b"RIFF, but not really")
    with pytest.raises(ValueError, match="`file` is not a WAV"):
        read_recipe(str(tmp_path / "fake.wav"))
    assert np.isclose(parse_recipe("x\nTask: audio, Duration: 2.5")["duration_s"], 2.5)
