"""demo/ helpers and tab builders, without launching anything."""


import gradio as gr
import pytest

from demo.widgets import model_line, seed_input


def test_progress_is_data_and_its_bar_is_drawn_by_the_browser():
    """The API returns the numbers (step, total, seconds, done); the bar is the component's template."""
    from demo.widgets import StepProgress, progress
    from pipelines.base import Step

    with gr.Blocks():
        bar = StepProgress()
        seed = seed_input()
    assert bar.api_info()["type"] == "object" and "${value" in bar.get_config()["html_template"]
    assert seed.get_config()["maximum"] == 2**32 - 1
    assert progress(None) is None
    assert progress(Step(3, 25, 0.6)) == {"step": 3, "total": 25, "seconds": 0.6, "done": False, "unit": "step"}
    assert progress(Step(25, 25, 4.9), done=True, seconds=5.0, unit="token")["seconds"] == 5.0


def test_the_validator_names_the_bad_parameter_before_anything_runs():
    from demo.widgets import validator
    from pipelines.checks import check_range, check_seed

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
    from pipelines.specs import unknown_words

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
    from demo.text_diffusion_tab import NEW, REVISED, canvas_value
    from demo.widgets import candidates_label
    from pipelines.base import Step

    step = Step(1, 4, 0.1, info={"token": " red", "candidates": [{"token": " red", "probability": 0.7},
                                                                 {"token": " blue", "probability": 0.2}]})
    assert candidates_label(step) == {"✓ ' red'": 0.7, "' blue'": 0.2}  # the token chosen, marked
    special = Step(1, 4, 0.1, info={"token": " a", "candidates": [{"token": "<|im_end|>", "probability": 0.6},
                                                                   {"token": "\n", "probability": 0.3},
                                                                   {"token": " a", "probability": 0.1}]})
    assert list(candidates_label(special)) == ["[end of reply]", "'↵'", "✓ ' a'"]
    canvas = Step(2, 4, 0.2, info={"canvas": [" The", "▒", " red", "."], "committed": [{"position": 2}]})
    assert canvas_value(canvas) == [(" ", None), ("The", None), ("▒", None), (" ", None), ("red", NEW), (".", None)]
    revised = Step(3, 4, 0.3, info={"canvas": [" The", " big", " red", "."], "committed": [{"position": 1}],
                                    "revised": [{"position": 2}]})
    assert [label for _, label in canvas_value(revised) if label] == [NEW, REVISED]


def test_the_chat_examples_show_as_their_messages():
    """The Text tab's examples carry every input of a chat (so a cached result is what they make) but show as labels:
    the message, and the system prompt where there is one, not a table of seven columns."""
    from demo import text_tab

    info = {"defaults": {"max_new_tokens": 8, "temperature": 0.7, "top_p": 0.9}, "model_id": "m", "licence": "l",
            "engine": "llama.cpp"}
    with gr.Blocks() as blocks:
        text_tab.build(lambda *a, **k: iter(()), info)
    (dataset,) = [c for c in blocks.blocks.values() if isinstance(c, gr.Dataset)]
    labels = dataset.sample_labels
    assert len(labels) == len(text_tab.EXAMPLES) and len(dataset.samples[0]) == 7
    for label, (message, system) in zip(labels, text_tab.EXAMPLES):
        assert label.startswith(message) and (system in label if system else "system" not in label)


def test_gradio_telemetry_is_off_unless_asked_for():
    from settings import parse_settings

    assert not parse_settings([], {}).analytics and not parse_settings([], {"GRADIO_ANALYTICS_ENABLED": "False"}).analytics
    assert parse_settings([], {"GRADIO_ANALYTICS_ENABLED": "True"}).analytics


def _event_fn(demo, api_name):
    return next(f.fn for f in demo.fns.values() if f.api_name == api_name)


def test_streaming_steps_resend_values_rather_than_skip_outputs():
    """A step names a value for every output (gr.skip() costs Gradio a new component and its schema each time),
    except the chat's message box, which the user may be typing the next message into."""
    import time

    from PIL import Image

    from demo import diffusion_tab, text_tab
    from demo.widgets import Pacer, Shown
    from pipelines.base import ImageOutput, Step, TextOutput

    def is_skip(value):
        return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1

    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")

    def image_stream(preview=True, **request):
        steps = [Step(1, 3, 0.1, red), Step(2, 3, 0.2, None), Step(3, 3, 0.3, blue)]  # step 2: no preview
        for step in steps:
            time.sleep(0.06)  # slower than the pacer's budget for one image, so step 2 is shown too
            yield step
        yield ImageOutput(blue, 0, 0.3, steps)

    def text_stream(prompt, *args, history=None):
        steps = [Step(k, 2, 0.1 * k, "ab"[:k], {"token": "ab"[k - 1], "probability": 0.5,
                                                "candidates": [{"token": "ab"[k - 1], "probability": 0.5}]})
                 for k in (1, 2)]
        for step in steps:
            time.sleep(0.03)  # a token every 30 ms: slower than the pacer's budget, so every step is shown
            yield step
        yield TextOutput("ab", 0.2, steps)

    info = {"model_id": "m", "licence": "MIT",
            "defaults": {"num_inference_steps": 3, "guidance_scale": 1.0, "width": 8, "height": 8, "max_new_tokens": 2,
                         "temperature": 0.7, "top_p": 0.9},
            "limits": {"num_inference_steps": (1, 10), "guidance_scale": (0, 20), "width": (8, 64, 8), "height": (8, 64, 8)}}
    with gr.Blocks() as demo:
        diffusion_tab.build("image", image_stream, info, finish=lambda out: {"image": out.image},
                            pacer=Pacer(20, keeps=lambda step: step.preview is not None))
        text_tab.build(text_stream, info, pacer=Pacer(40))
    image_steps = list(_event_fn(demo, "image")("p", "", 3, 1.0, 0, 8, 8, True))[:-1]
    assert not any(is_skip(v) for update in image_steps for v in update)
    # each preview as its own file; a step without a preview keeps the last one (the same file)
    assert [Image.open(update[0]).getpixel((0, 0)) for update in image_steps] == [(255, 0, 0), (255, 0, 0), (0, 0, 255)]
    assert image_steps[0][0] == image_steps[1][0] != image_steps[2][0]
    chat = list(_event_fn(demo, "chat")("hi", [], "", 2, 0.7, 0.9, 0))
    assert [[i for i, v in enumerate(update) if is_skip(v)] for update in chat[1:-1]] == [[1], [1]]  # the message box
    assert chat[-2][0][-1] == {"role": "assistant", "content": "ab"}
    text_steps = list(_event_fn(demo, "text")("hi", "", 2, 0.7, 0.9, 0))[:-1]
    assert not any(is_skip(v) for update in text_steps for v in update)

    shown = Shown(a=1, b=None)
    assert shown(b=2) == (1, 2) and shown(b=None) == (1, 2)
    with pytest.raises(TypeError, match="not an output of this event: c"):
        shown(c=3)


def test_token_streams_share_an_update_budget_counted_from_the_request():
    """One stream alone shows every step that comes slower than the budget allows; four at once each show fewer, the
    first of them no sooner than one budget after the request; every stream its final output, and a run over within
    one budget that alone. A step kept back when the output comes is not shown (the output shows all it did). A
    stream closed early leaves the budget to the others."""
    import threading
    import time

    from demo.widgets import Pacer
    from pipelines.base import Step

    def tokens(n, gap_s=0.03):
        for i in range(1, n + 1):
            time.sleep(gap_s)
            yield Step(index=i, total=n, elapsed=i * gap_s)
        yield "output"

    pace = Pacer(per_second=10)  # one stream: a step every 100 ms at most; four: every 400 ms
    alone = list(pace(tokens(6, gap_s=0.12)))
    assert [s.index for s in alone[:-1]] == list(range(1, 7)) and alone[-1] == "output"
    assert list(pace(tokens(3, gap_s=0.01))) == ["output"]  # over in 30 ms: nothing to watch, the result at once
    shown = {}
    threads = [threading.Thread(target=lambda k=k: shown.__setitem__(k, list(pace(tokens(20))))) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for items in shown.values():  # 600 ms each; with four running, 400 ms between two updates of one
        steps = [s.index for s in items[:-1]]
        assert items[-1] == "output" and 1 <= len(steps) <= 3 and steps[0] >= 10, steps
    inner = tokens(5, gap_s=0.12)
    early = pace(inner)
    next(early)
    early.close()
    assert pace.running == 0 and inner.gi_frame is None  # the stream it read is closed too (a run is cancelled)
    odd = Pacer(per_second=1, always=lambda step: step.index % 2 == 1)  # one update a second, but odd steps always
    assert [s.index for s in list(odd(tokens(6, gap_s=0.01)))[:-1]] == [1, 3, 5]
    # A diffusion stream's first update waits for what a person would not see as instant (0.1 s), then the rate
    first = Pacer(per_second=50, first_after_s=0.1)  # steps at 40, 80, 120, 160, ... ms
    assert list(first(tokens(2, gap_s=0.04))) == ["output"]  # over in 80 ms: its result alone
    steps = [s.index for s in list(first(tokens(6, gap_s=0.04)))[:-1]]
    assert steps == list(range(3, 7)), steps  # from 120 ms, then every step (40 ms apart, 20 allowed at 50/s)


def test_a_stream_made_under_the_pacer_keeps_its_steps_back_in_its_worker():
    """Made as the pacer reads its first item (app.py's streams are generator functions), a stream_steps stream
    takes the pacing (STEP_FILTER) into its worker: the steps kept back never reach the consuming thread, and what
    does is what the pacer would show."""
    import threading
    import time

    from demo.widgets import Pacer
    from pipelines.base import STEP_FILTER, Step, stream_steps

    def work(emit):
        for i in range(1, 31):
            time.sleep(0.01)
            emit(Step(index=i, total=30, elapsed=i * 0.01, preview=f"picture {i}" if i % 7 == 1 else None))
        return "output"

    def lazily():  # as app.py's on_gpu: the stream is made on the first next()
        yield from stream_steps(work, threading.Lock())

    handed = []

    def counted(stream):
        for item in stream:
            handed.append(item)
            yield item

    pace = Pacer(per_second=10, keeps=lambda s: s.preview is not None, upstream=STEP_FILTER)
    shown = list(pace(counted(lazily())))
    assert shown[-1] == "output" and handed == shown  # nothing reached this thread that was not shown
    steps = [s.index for s in shown[:-1]]
    assert 1 <= len(steps) <= 3 and steps[0] >= 5, steps  # 300 ms of steps (or more), an update every 100 ms at most
    assert shown[0].preview is not None  # the step shown in place of one without a preview carries the last preview
    handed.clear()  # a stream made before the pacer reads it: every step reaches this thread, which paces them
    unpaced = list(Pacer(per_second=10, upstream=STEP_FILTER)(counted(stream_steps(work, threading.Lock()))))
    steps = [s.index for s in unpaced[:-1]]
    assert len(handed) == 31 and unpaced[-1] == "output" and 1 <= len(steps) <= 3 and steps[0] >= 5, steps


def test_the_pacer_shows_a_held_preview_in_place_of_a_later_step_without_one():
    """A batch previews only some steps: a paced stream whose shown step has no preview shows the last preview held
    back instead, so the picture still forms on screen."""
    import time

    from demo.widgets import Pacer
    from pipelines.base import Step

    def steps():
        for i in range(1, 9):
            time.sleep(0.02)
            yield Step(index=i, total=8, elapsed=i * 0.02, preview=f"picture {i}" if i in (2, 4) else None)
        yield "output"

    shown = list(Pacer(per_second=10, keeps=lambda s: s.preview is not None)(steps()))  # an update every 100 ms
    # the first update comes with step 5 (100 ms), which has no preview: step 4's is shown in its place
    assert [s.preview for s in shown[:-1]] == ["picture 4"] and shown[-1] == "output", shown
