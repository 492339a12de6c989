"""demo/ui.py helpers, without launching anything."""

import gradio as gr
import pytest

from demo.ui import Slider, model_line, seed_input


def test_named_slider_keeps_its_browser_config_and_names_its_field():
    with gr.Blocks():
        slider = Slider(0, 2, value=0.7, step=0.05, label="Temperature", field="temperature")
        seed = seed_input()
    config = slider.get_config()  # what the browser gets: a subclass must not lose these
    assert (config["minimum"], config["maximum"], config["value"], config["step"]) == (0, 2, 0.7, 0.05)
    assert seed.get_config()["maximum"] == 2**32 - 1
    assert slider.preprocess(1.5) == 1.5
    with pytest.raises(gr.Error, match=r"temperature \(Temperature\).*greater than maximum"):
        slider.preprocess(9.0)
    with pytest.raises(gr.Error, match="seed"):
        seed.preprocess(-1)


def test_unknown_words_know_the_words_of_vocabulary_phrases():
    from pipelines.registry import unknown_words

    vocabulary = ["a", "circle", "red", "left", "moving left", "growing"]
    assert unknown_words("A red circle moving left", vocabulary) == []
    assert unknown_words("a red circle zooming left, zooming", vocabulary) == ["zooming"]
    assert unknown_words("anything at all", None) == []


def test_model_line_names_the_motion_adapter_where_there_is_one():
    image = {"model_id": "models/tiny-shapes-image", "licence": "MIT"}
    assert model_line(image) == "Model: `models/tiny-shapes-image` · licence: MIT"
    video = {**image, "motion_adapter": "models/tiny-shapes-motion"}
    assert "`models/tiny-shapes-image` + motion adapter `models/tiny-shapes-motion`" in model_line(video)
