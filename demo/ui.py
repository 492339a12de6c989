"""Small pieces every tab uses: the progress bar, error reporting, the model card line."""

import functools
import html
import inspect
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import gradio as gr

from pipelines.base import Step

CSS = """
.pixelated img, .pixelated video { image-rendering: pixelated; }
/* tiny bundled outputs (64x64) fill their box, scaled up crisply, instead of a stamp in the middle */
.enlarge img, .enlarge video { width: 100% !important; height: 100% !important; object-fit: contain; }
.step-progress { font-family: ui-monospace, monospace; font-size: 0.9em; }
.step-progress progress { width: 100%; height: 14px; }
.missing-model { border-left: 4px solid #d97706; padding: 8px 12px; background: rgba(217,119,6,0.08); }
.candidates td, .candidates th { padding: 2px 8px; font-family: ui-monospace, monospace; }
"""


def progress_html(step: Step | None, label: str = "step", done: bool = False, seconds: float | None = None) -> str:
    """An HTML progress bar: step k of n, elapsed time and time per step."""
    if step is None:
        return "<div class='step-progress'>ready</div>"
    per = step.elapsed / max(step.index, 1)
    text = (f"done: {step.index} {label}s in {seconds if seconds is not None else step.elapsed:.2f} s ({per * 1000:.0f} ms per {label})"
            if done else f"{label} {step.index} / {step.total} · {step.elapsed:.2f} s · {per * 1000:.0f} ms per {label}")
    value = step.total if done else step.index
    return f"<div class='step-progress'><progress value='{value}' max='{step.total}'></progress><br>{html.escape(text)}</div>"


def model_line(info: dict) -> str:
    """The tab's model, its motion adapter where it has one (video), the engine that runs it (LLM), and the licence."""
    adapter = f" + motion adapter `{info['motion_adapter']}`" if info.get("motion_adapter") else ""
    engine = f" on {info['engine']}" if info.get("engine") else ""
    return f"Model: `{info['model_id']}`{adapter}{engine} · licence: {info['licence']}"


def missing_box(info: dict) -> str:
    return f"<div class='missing-model'>⚠️ {html.escape(info['missing'])}</div>" if info.get("missing") else ""


def vocabulary_note(info: dict) -> str:
    words = info.get("vocabulary")
    if not words:
        return ""
    return ("This bundled model was trained here on procedural data and knows only these words: "
            + ", ".join(f"`{w}`" for w in words) + ". Other words are ignored.")


def guarded(fn: Callable) -> Callable:
    """Turn bad input (ValueError) and a missing model (RuntimeError) into a gr.Error naming the problem.

    Gradio shows the message to this user only; the server and other users carry on. Works for
    plain and generator functions, and keeps the signature (Gradio names API parameters from it).
    """
    if inspect.isgeneratorfunction(fn):

        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (ValueError, RuntimeError) as exc:
                raise gr.Error(str(exc)) from exc
    else:

        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (ValueError, RuntimeError) as exc:
                raise gr.Error(str(exc)) from exc

    return functools.wraps(fn)(wrapper)


class Shown:
    """What a streaming run's outputs show, sent whole at every step: `yield shown(progress=...)`.

    `blank` names every output of the event, in its order, with the value it shows when a run starts
    (None clears last run's result). A step names only what it changes; a change of None leaves that
    output as it is (a step without a preview). The rest is sent again as it stands rather than as
    gr.skip(): Gradio 6.31 meets every gr.skip() aimed at a component by building a new instance of
    it and its config, JSON schema included, under the GIL: an update of (image, HTML, gallery) took
    Gradio 12.3 ms with the image and gallery skipped and 4.2 ms with their values (bench/bench.py's
    `bench_gradio_updates`); at 8 images at once, or a token a step, that is the model's own scale.
    A value sent again is postprocessed (cheap: text, an HTML bar, a small PNG already in the cache)
    and streams as an empty diff. Keep gr.skip() as the blank of an input the user may be typing
    into: a value sent again would overwrite what they typed."""

    def __init__(self, **blank):
        self.values = dict(blank)

    def __call__(self, **changes) -> tuple:
        unknown = changes.keys() - self.values.keys()
        if unknown:
            raise TypeError(f"not an output of this event: {', '.join(sorted(unknown))}")
        self.values.update({k: v for k, v in changes.items() if v is not None})
        return tuple(self.values.values())


class Pacer:
    """Caps the screen updates of the step streams running at once at `per_second` together: each stream shows a
    step only if its last shown one is at least (streams running) / `per_second` seconds old, and always its first
    step and its final output (which holds every step). A reply alone at up to `per_second` tokens a second shows
    every token; eight at once show every 200 ms what has come (at 40 a second), a token or two each. Closing the
    paced stream (Stop, a closed tab) closes the one it reads, which cancels the run.

    Each update costs the server a few ms of Gradio's processing and streaming, on the cores the model runs on.
    Eight 32-token /text replies at once through the server (bench/bench.py) took 4.08-4.89 s showing every token
    and 3.72-3.81 s paced at 40 a second (1.79-2.01x the throughput of eight in turn, then 2.11-2.24x); the Text
    tab's /chat 4.98-5.40 s, then 4.40-4.56 s. A reply alone is as before."""

    def __init__(self, per_second: float, always: Callable[[Step], bool] | None = None):
        """`always(step)`: steps shown whatever the budget (a diffusion step's new preview)."""
        self.per_second, self.always = per_second, always
        self.running = 0
        self.lock = threading.Lock()

    def __call__(self, items: Iterable) -> Iterator:
        with self.lock:
            self.running += 1
        try:
            shown = None  # time.monotonic() of the last step shown
            for item in items:
                if isinstance(item, Step):
                    now = time.monotonic()
                    if shown is not None and now - shown < self.running / self.per_second and not (
                            self.always and self.always(item)):
                        continue
                    shown = now
                yield item
        finally:
            with self.lock:
                self.running -= 1
            if hasattr(items, "close"):
                items.close()


# Screen updates per second of all token streams together (env STREAM_UPDATES_PER_S): the Text and Translate tabs.
TOKEN_STREAMS = Pacer(float(os.environ.get("STREAM_UPDATES_PER_S", "40")))
# Image steps: each new preview is shown (a batch already spends only BATCH_PREVIEW_SHARE of its time on them); the
# steps between, which only move the progress bar, share 20 updates a second. An image alone shows every step;
# eight in a batch (25 steps, ~0.36 s each on 2 cores) show their 10 previews and about every other step besides.
# Eight concurrent /image through the server: 7.50-9.48 s paced against 9.68-11.01 s showing every step (2.07-2.63x
# the throughput of eight in turn, against 1.73-2.22x; four runs each, alternated).
DIFFUSION_STREAMS = Pacer(float(os.environ.get("DIFFUSION_UPDATES_PER_S", "20")),
                          always=lambda step: step.preview is not None)


def candidates_label(step: Step | None) -> dict | None:
    """A step's top-5 next-token candidates for gr.Label: {token (quoted, so spaces show): probability}."""
    if step is None or "candidates" not in step.info:
        return None
    return {repr(c["token"]): c["probability"] for c in step.info["candidates"]}


def load_settings(task: str, read_recipe, fields: dict, randomize: gr.Checkbox) -> None:
    """A "Load settings" box: a file this app made (its recipe inside, see pipelines/recipe.py) fills in `fields`
    ({argument name: component}) and turns "Randomize seed" off, so Generate makes the same output again."""
    kinds = {"image": ".png", "audio": ".wav", "video": ".mp4"}
    with gr.Accordion("Load settings from a file this app made", open=False):
        box = gr.File(label=f"A {kinds[task][1:].upper()} from this tab", file_types=[kinds[task]], type="filepath",
                      elem_id=f"{task}-load")

    def fill(path):
        if not path:
            return [gr.skip()] * (len(fields) + 1)
        try:
            recipe = read_recipe(path)
        except ValueError as exc:
            raise gr.Error(str(exc)) from exc
        if recipe["task"] != task:
            raise gr.Error(f"This file was made by the {recipe['task'].title()} tab; load it there.")
        return [recipe.get(name, gr.skip()) for name in fields] + [False]

    box.upload(fill, box, [*fields.values(), randomize], api_name=False, queue=False)


def validator(check: Callable | None, fn: Callable) -> Callable | None:
    """A Gradio event validator from a pipeline's check: Gradio runs it without queueing, so bad input (a value out
    of range, null, NaN, text that is not valid text) is refused at once, naming the parameter, however long the
    queue; gradio_client raises ValidationError("- seed: `seed` must be ...").

    `check` receives the event's inputs, as `fn` (the event's function) does, and raises ValueError naming the
    parameter in backticks; the validator marks that parameter (by `fn`'s signature) invalid.
    """
    if check is None:
        return None
    signature = inspect.signature(fn)
    names = list(signature.parameters)

    def validate(*args):
        try:
            check(*args)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            named = re.search(r"`(\w+)`", message)
            bad = names.index(named.group(1)) if named and named.group(1) in names else 0
            return [gr.validate(i != bad, message if i == bad else "") for i in range(len(args))]
        return [gr.validate(True, "") for _ in args]

    validate.__signature__ = signature  # Gradio names each validation result after these parameters
    return validate


def evenly(steps: list, k: int) -> list:
    """k items spread evenly over `steps`, always including the last."""
    if len(steps) <= k:
        return list(steps)
    return [steps[round(i * (len(steps) - 1) / (k - 1))] for i in range(k)]


RANDOM_SEED_JS = "(seed, randomize) => randomize ? Math.floor(Math.random() * 4294967295) : seed"


class _NamesField:
    """Mixin: a value Gradio's own preprocessing refuses (out of range, null, not a number) is handed on as it
    came, so that the event's validator (see `validator`) refuses it by the API parameter's name, before the
    queue: Gradio's own error says only "Value 9 is greater than maximum value 2." and, raised while
    preprocessing, reaches a gradio_client caller as a bare "400 Bad Request". No __init__ here: Gradio builds
    the component's browser config from the signature of __init__, which must stay gr.Slider's / gr.Number's own."""

    _field = ""  # the API parameter name, set by `Slider` / `seed_input`

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except (gr.Error, TypeError, ValueError):
            return payload

    def get_block_name(self) -> str:
        """The browser draws the Gradio component this subclasses ("slider"), not an unknown "_slider"."""
        return next(c.__name__.lower() for c in type(self).__mro__ if c.__module__.startswith("gradio."))


class _Slider(_NamesField, gr.Slider):
    pass


class _Radio(_NamesField, gr.Radio):
    pass


class _Textbox(gr.Textbox):
    """A gr.Textbox that hands a non-text payload (an API client sending a number or a dict) on as it came, for the
    event's validator to refuse by name, instead of turning it into text. No __init__, as for _NamesField."""

    _field = ""
    get_block_name = _NamesField.get_block_name

    def preprocess(self, payload):
        return payload if payload is not None and not isinstance(payload, str) else super().preprocess(payload)


class _Number(_NamesField, gr.Number):
    pass


def Slider(*args, field: str, **kwargs) -> gr.Slider:  # noqa: N802  (used like the class it makes)
    """A gr.Slider whose out-of-range error names `field`, its API parameter."""
    slider = _Slider(*args, **kwargs)
    slider._field = field
    return slider


def Radio(*args, field: str, **kwargs) -> gr.Radio:  # noqa: N802  (used like the class it makes)
    """A gr.Radio whose unknown choice reaches the event's validator, which names `field` and lists the choices."""
    radio = _Radio(*args, **kwargs)
    radio._field = field
    return radio


def Textbox(*args, field: str, **kwargs) -> gr.Textbox:  # noqa: N802  (used like the class it makes)
    """A gr.Textbox for an API parameter named `field`: text only."""
    box = _Textbox(*args, **kwargs)
    box._field = field
    return box


def seed_input() -> gr.Number:
    """The seed box every generating tab shows: an integer in [0, 2**32 - 1]."""
    number = _Number(value=0, precision=0, label="Seed", minimum=0, maximum=2**32 - 1)
    number._field = "seed"
    return number
