"""demo/ui.py helpers, without launching anything."""

from pathlib import Path

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
    # Out of range, null or not a number: handed on as it came, for the event's validator to refuse by name.
    assert slider.preprocess(9.0) == 9.0 and slider.preprocess(None) is None and slider.preprocess("abc") == "abc"
    assert seed.preprocess(-1) == -1


def test_the_validator_names_the_bad_parameter_before_anything_runs():
    from demo.ui import validator
    from pipelines.base import check_range, check_seed

    def fn(prompt, temperature, seed):
        raise AssertionError("a validator never calls the event's function")

    def check(prompt, temperature, seed):
        check_range("temperature", temperature, 0, 2)
        check_seed(seed)

    validate = validator(check, fn)
    assert [v["is_valid"] for v in validate("hi", 0.5, 3)] == [True, True, True]
    result = validate("hi", 0.5, -1)
    assert [v["is_valid"] for v in result] == [True, True, False] and "`seed`" in result[2]["message"]
    assert [v["is_valid"] for v in validate("hi", None, 1)] == [True, False, True]
    assert validator(None, fn) is None


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


def test_entities_and_keywords_are_marked_over_the_text_as_whole_words():
    from demo.understand_tab import marked

    text = "Marie Curie moved to Paris. Parisians loved Paris."
    out = marked(text, {"entities": [{"text": "Marie Curie", "type": "person"}, {"text": "Paris", "type": "place"}]})
    assert out["text"] == text
    assert [(text[s["start"]:s["end"]], s["entity"]) for s in out["entities"]] == [
        ("Marie Curie", "person"), ("Paris", "place"), ("Paris", "place")]  # not inside "Parisians"
    kws = marked("Noise becomes an image.", {"keywords": [{"keyword": "noise", "surprisal_bits": 9.1}]})
    assert kws["entities"] == [{"entity": "keyword", "start": 0, "end": 5}]
    assert marked("fine", {"label": "positive", "probabilities": {}}) is None


def test_candidates_and_canvas_views():
    from demo.text_diffusion_tab import NEW, canvas_value
    from demo.ui import candidates_label
    from pipelines.base import Step

    step = Step(1, 4, 0.1, info={"token": " red", "candidates": [{"token": " red", "probability": 0.7},
                                                                 {"token": " blue", "probability": 0.2}]})
    assert candidates_label(step) == {"' red'": 0.7, "' blue'": 0.2}
    canvas = Step(2, 4, 0.2, info={"canvas": [" The", "▒", " red", "."], "committed": [{"position": 2}]})
    assert canvas_value(canvas) == [(" ", None), ("The", None), ("▒", None), (" ", None), ("red", NEW), (".", None)]


def test_the_chat_examples_are_headed_by_short_names():
    """An Examples table's header is its inputs' labels unless set: the message box's label carries its key hints."""
    from demo import text_tab

    with gr.Blocks() as blocks:
        text_tab.build(lambda *a, **k: iter(()), {"defaults": {}, "model_id": "m", "licence": "l", "engine": "llama.cpp"})
    headers = [c.headers for c in blocks.blocks.values() if isinstance(c, gr.Dataset)]
    assert headers == [["Message", "System prompt"]]


def _fresh_python(code: str) -> str:
    """Run `code` in a new interpreter at the repository root (gradio not yet imported); its stdout."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_gradio_imports_without_its_stub_writer_and_still_works():
    """demo/gradio_import.py: gradio's per-component .pyi writer is skipped; components and events work as before."""
    code = """
import sys
from demo.gradio_import import skip_stub_writing
assert skip_stub_writing()
import gradio as gr
from gradio import component_meta
component_meta.create_or_modify_pyi(gr.Textbox, "Textbox", [])  # a no-op now: would read and parse the source
with gr.Blocks() as blocks:
    box = gr.Textbox(label="x")
    box.submit(lambda s: s, box, box)
assert blocks.config["components"] and not skip_stub_writing()  # already imported: says so
print(component_meta.create_or_modify_pyi.__name__)
"""
    assert _fresh_python(code).strip() == "<lambda>"


def test_gradio_imports_without_the_mcp_sdk_when_no_mcp_is_served():
    """demo/gradio_import.defer_mcp, which app.py's main() calls when started without --mcp: `import gradio` loads no
    MCP SDK, and an MCP server built anyway says how to get one. (With --mcp: test_app.py's MCP test.)"""
    code = """
import sys
from demo.gradio_import import defer_mcp
assert defer_mcp()
import gradio as gr
from gradio.mcp import GradioMCPServer
assert not any(name == "mcp" or name.startswith("mcp.") for name in sys.modules), "the MCP SDK was imported"
with gr.Blocks() as blocks:
    box = gr.Textbox(label="x")
    box.submit(lambda s: s, box, box)
try:
    GradioMCPServer(blocks)
except RuntimeError as exc:
    print(exc)
assert not defer_mcp()  # already imported: says so
"""
    assert "start the app with --mcp" in _fresh_python(code)


def test_the_app_builds_without_pandas_or_a_server_and_both_come_on_first_use():
    """demo/gradio_import.defer_pandas and app_ui.server_built_at_launch (start-up: README, #16): building the whole
    app loads no pandas and builds no FastAPI app; a plot's DataFrame then works, and the app serves after launch."""
    code = """
import sys, urllib.request
import app
import pandas
from gradio.routes import App
settings = app.parse_settings(["--max-queue", "7"])
demo, _ = app.build_app(settings)
assert "pandas.core" not in sys.modules and type(pandas).__name__ == "_Deferred", "pandas was imported"
assert demo.app is None and demo._queue.max_size == 7
assert App.create_app(demo) is not None  # the build is back once the UI is built
from demo.differences_tab import seconds_frame
import gradio as gr
frame = seconds_frame({"llm": [{"step": 1, "seconds": 0.5}]})
assert list(frame.columns) == ["step", "seconds", "lane"] and type(sys.modules["pandas"]).__name__ == "module"
assert gr.LinePlot(x="step", y="seconds").postprocess(frame) is not None
demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True)
with urllib.request.urlopen(demo.local_url, timeout=30) as r:
    print("served", r.status)
demo.close()
"""
    assert "served 200" in _fresh_python(code)


def test_gradio_telemetry_is_off_unless_asked_for():
    from demo.app_ui import telemetry

    assert not telemetry({}) and not telemetry({"GRADIO_ANALYTICS_ENABLED": "False"})
    assert telemetry({"GRADIO_ANALYTICS_ENABLED": "True"})


def _event_fn(demo, api_name):
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name)


def test_streaming_steps_resend_values_rather_than_skip_outputs():
    """A step names a value for every output (gr.skip() costs Gradio a new component and its schema each time),
    except the chat's message box, which the user may be typing the next message into."""
    import time

    from PIL import Image

    from demo import image_tab, text_tab
    from demo.ui import Shown
    from pipelines.base import ImageOutput, Step, TextOutput

    def is_skip(value):
        return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1

    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")

    def image_stream(*args, preview=True):
        steps = [Step(1, 3, 0.1, red), Step(2, 3, 0.2, None), Step(3, 3, 0.3, blue)]  # step 2: no preview
        for step in steps:
            time.sleep(0.06)  # slower than DIFFUSION_STREAMS' budget for one image, so step 2 is shown too
            yield step
        yield ImageOutput(blue, 0, 0.3, steps)

    def text_stream(prompt, *args, history=None):
        steps = [Step(k, 2, 0.1 * k, "ab"[:k], {"token": "ab"[k - 1], "probability": 0.5,
                                                "candidates": [{"token": "ab"[k - 1], "probability": 0.5}]})
                 for k in (1, 2)]
        for step in steps:
            time.sleep(0.03)  # a token every 30 ms: slower than TOKEN_STREAMS' budget, so every step is shown
            yield step
        yield TextOutput("ab", 0.2, steps)

    info = {"model_id": "m", "licence": "MIT", "defaults": {}, "limits": {}}
    with gr.Blocks() as demo:
        image_tab.build(image_stream, info)
        text_tab.build(text_stream, info)
    image_steps = list(_event_fn(demo, "image")("p", "", 3, 1.0, 0, 8, 8, True))[:-1]
    assert not any(is_skip(v) for update in image_steps for v in update)
    assert [update[0] for update in image_steps] == [red, red, blue]  # a step without a preview keeps the last one
    chat = list(_event_fn(demo, "chat")("hi", [], "", 2, 0.7, 0.9, 0))
    assert [[i for i, v in enumerate(update) if is_skip(v)] for update in chat[1:-1]] == [[1], [1]]  # the message box
    assert chat[-2][0][-1] == {"role": "assistant", "content": "ab"}
    text_steps = list(_event_fn(demo, "text")("hi", "", 2, 0.7, 0.9, 0))[:-1]
    assert not any(is_skip(v) for update in text_steps for v in update)

    shown = Shown(a=1, b=None)
    assert shown(b=2) == (1, 2) and shown(b=None) == (1, 2)
    with pytest.raises(TypeError, match="not an output of this event: c"):
        shown(c=3)


def test_token_streams_share_an_update_budget_and_keep_their_first_step_and_output():
    """One stream alone shows every step that comes slower than the budget allows; four at once each show fewer,
    but still the first step and the final output; a stream closed early leaves the budget to the others."""
    import threading
    import time

    from demo.ui import Pacer
    from pipelines.base import Step

    def tokens(n, gap_s=0.03):
        for i in range(1, n + 1):
            time.sleep(gap_s)
            yield Step(index=i, total=n, elapsed=i * gap_s)
        yield "output"

    pace = Pacer(per_second=10)  # one stream: a step every 100 ms at most; four: every 400 ms
    alone = list(pace(tokens(6, gap_s=0.12)))
    assert [s.index for s in alone[:-1]] == list(range(1, 7)) and alone[-1] == "output"
    shown = {}
    threads = [threading.Thread(target=lambda k=k: shown.__setitem__(k, list(pace(tokens(20))))) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for items in shown.values():
        steps = [s.index for s in items[:-1]]
        assert steps[0] == 1 and items[-1] == "output" and 2 <= len(steps) <= 10, steps
    inner = tokens(5)
    early = pace(inner)
    next(early)
    early.close()
    assert pace.running == 0 and inner.gi_frame is None  # the stream it read is closed too (a run is cancelled)
    odd = Pacer(per_second=1, always=lambda step: step.index % 2 == 1)  # one update a second, but odd steps always
    assert [s.index for s in list(odd(tokens(6, gap_s=0.01)))[:-1]] == [1, 3, 5]
