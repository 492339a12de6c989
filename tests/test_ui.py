"""demo/ui.py helpers, without launching anything."""

import gradio as gr
import pytest

from demo.ui import Slider, seed_input


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
