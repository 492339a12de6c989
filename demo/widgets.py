"""Pieces every tab uses: the step progress (data in, bar drawn by the browser), input validation, pacing, the model
card line. Never imports torch or pipelines/: what a tab needs from the models, app.py hands it."""

import contextvars
import html
import inspect
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gradio as gr

CSS = """
.pixelated img, .pixelated video { image-rendering: pixelated; }
/* tiny bundled outputs (64x64) fill their box, scaled up crisply, instead of a stamp in the middle */
.enlarge img, .enlarge video { width: 100% !important; height: 100% !important; object-fit: contain; }
.missing-model { border-left: 4px solid #d97706; padding: 8px 12px; background: rgba(217,119,6,0.08); }
"""

_BAR = """${value && value.total ? `
<div class='step-progress'>
  ${value.label ? `<b>${value.label}</b><br>` : ''}
  <progress value='${value.done ? value.total : value.step}' max='${value.total}'></progress><br>
  ${value.done ? `done: ${value.step} ${value.unit || 'step'}s in ${value.seconds.toFixed(2)} s`
               : `${value.unit || 'step'} ${value.step} / ${value.total} · ${value.seconds.toFixed(2)} s`}
  · ${Math.round(1000 * value.seconds / Math.max(value.step, 1))} ms per ${value.unit || 'step'}
  ${value.passes ? ` · forward passes ${value.passes}` : ''}
</div>` : `<div class='step-progress'>${value && value.label ? `<b>${value.label}</b><br>` : ''}ready</div>`}"""
_BAR_CSS = """.step-progress { font-family: ui-monospace, monospace; font-size: 0.9em; }
.step-progress progress { width: 100%; height: 14px; }"""


def is_step(item) -> bool:
    """Whether a stream's item is a Step (pipelines' `Step`: index, total, elapsed), not the final output."""
    return all(hasattr(item, name) for name in ("index", "total", "elapsed", "info"))


class DataHTML(gr.HTML):
    """A gr.HTML whose value is data (a dict) that its template draws. Flagged and cached (the examples' cache) as
    JSON, as gr.HTML writes it, and read back as the dict (gr.HTML would hand the template the JSON text)."""

    def read_from_flag(self, payload: Any):
        return json.loads(payload) if isinstance(payload, str) and payload.strip() else payload or None


class StepProgress(DataHTML):
    """A run's progress as data, {"step", "total", "seconds", "done", "unit"?, "label"?, "passes"?}, drawn as a bar by
    the browser (a gr.HTML template): the API returns the numbers, never markup."""

    def __init__(self, value: dict | None = None, **kwargs):
        super().__init__(value=value, html_template=_BAR, css_template=_BAR_CSS, js_on_load=None, **kwargs)

    def api_info(self) -> dict[str, Any]:
        return {"type": "object", "description": "progress: step, total, seconds, done",
                "properties": {"step": {"type": "integer"}, "total": {"type": "integer"},
                               "seconds": {"type": "number"}, "done": {"type": "boolean"}}}


_STATS = """${value && value.steps ? `<div class='run-stats'>
  steps <b>${value.steps}</b> · forward passes <b>${value.forward_passes ?? value.steps}</b>
  ${value.tokens_per_pass != null ? ` · tokens per pass <b>${value.tokens_per_pass}</b>` : ''}
  ${value.tokens_per_second != null ? ` · tokens/s <b>${value.tokens_per_second}</b>` : ''}
  ${value.block ? ` · refining positions ${value.block[0] + 1}-${value.block[1]}` : ''}
  ${value.settled_at ? ` · the answer settled at step <b>${value.settled_at}</b>` : ''}
  ${value.revisions ? ` · <b>${value.revisions}</b> revised` : ''}</div>` : ''}"""


class RunStats(DataHTML):
    """A text-diffusion run's numbers as data ({"steps", "forward_passes", "tokens_per_pass", "tokens_per_second",
    "block"?, "settled_at"?, "revisions"?}), drawn by the browser."""

    def __init__(self, value: dict | None = None, **kwargs):
        super().__init__(value=value, html_template=_STATS, css_template=".run-stats { font-size: 0.9em; }",
                         js_on_load=None, **kwargs)

    def api_info(self) -> dict[str, Any]:
        return {"type": "object", "description": "the run's numbers: steps, forward_passes, tokens_per_pass, "
                "tokens_per_second, settled_at, revisions"}


def progress(step, done: bool = False, seconds: float | None = None, unit: str = "step", **extra) -> dict | None:
    """A StepProgress value for a Step (None: nothing has run): the step reached, of how many, and seconds."""
    if step is None:
        return None
    return {"step": step.index, "total": step.total, "seconds": round(step.elapsed if seconds is None else seconds, 3),
            "done": done, "unit": unit, **extra}


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
    """Turn bad input (ValueError, InvalidInput among them) and a missing or failing model (RuntimeError) into a
    gr.Error naming the problem. Gradio shows it to this user only; the server and other users carry on. Works for
    plain and generator functions, and keeps the signature (Gradio names API parameters from it)."""
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

    wrapper.__name__, wrapper.__qualname__, wrapper.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    wrapper.__signature__ = inspect.signature(fn)
    return wrapper


class FieldError(ValueError):
    """Bad input for a UI-only field (a checkbox the pipeline never sees), named as the pipelines' InvalidInput is."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise FieldError(name, f"`{name}` must be true or false.")


def endpoint(name: str) -> Callable:
    """Decorator for a named endpoint's function: `guarded`, and named `name` after its endpoint, as MCP names the
    endpoint's tool after its function."""

    def decorate(fn: Callable) -> Callable:
        wrapped = guarded(fn)
        wrapped.__name__ = wrapped.__qualname__ = name
        return wrapped

    return decorate


def validator(check: Callable | None, fn: Callable) -> Callable | None:
    """A Gradio event validator from a pipeline's check: Gradio runs it before the queue, so bad input is refused at
    once, however long the queue. The event runs with `preprocess=False`, so the check sees the values as the client
    sent them (null, NaN, text where a number goes) and names the field itself; `check` raises InvalidInput (or a
    ValueError / TypeError), and the input whose parameter is `exc.field` is marked."""
    if check is None:
        return None
    signature = inspect.signature(fn)
    names = list(signature.parameters)

    def validate(*args):
        try:
            check(*args)
        except (ValueError, TypeError) as exc:
            field = getattr(exc, "field", None)
            bad = names.index(field) if field in names else 0
            return [gr.validate(i != bad, str(exc) if i == bad else "") for i in range(len(args))]
        return [gr.validate(True, "") for _ in args]

    validate.__signature__ = signature  # Gradio names each validation result after these parameters
    return validate


# The Examples of the demo being built, for app.prefill_examples (build_demo sets a fresh list around each build).
EXAMPLE_SETS: contextvars.ContextVar[list | None] = contextvars.ContextVar("example_sets", default=None)


def cached_examples(rows: list[list], inputs: list, fn: Callable, outputs: list, labels: list[str] | None = None,
                    keep: Iterable[int] | None = None, **kwargs) -> gr.Examples:
    """Examples whose results Gradio caches: a click fills the inputs and shows that example's result at once. A
    result is made at the example's first click (by any visitor), or ahead of time by app.prefill_examples, and kept
    in Gradio's examples cache (GRADIO_EXAMPLES_CACHE, which app.py points into the app's cache folder).

    Each row gives the first inputs; the others take their components' current values (the defaults), so a cached
    result is exactly what those inputs make, and the click sets every one of them. `fn` is the tab's event function
    (a stream): it runs to its last update. `keep`: the positions of `fn`'s outputs that `outputs` lists (default:
    all); a run's gr.State and other per-session outputs are left out. `labels`: shown instead of the rows' values."""
    rows = [list(row) + [c.value for c in inputs[len(row):]] for row in rows]
    keep = list(keep) if keep is not None else None

    def final(*args):
        # Gradio hands an example's JSON value over as its data model (JsonData), not as the JSON an event gets
        args = [arg.model_dump() if hasattr(arg, "model_dump") else arg for arg in args]
        last = None
        for last in fn(*args):  # noqa: B007  (the stream's last update is the result)
            pass
        last = last if isinstance(last, tuple) else (last,)
        last = tuple(last[i] for i in keep) if keep is not None else last
        # An empty output is cached as an update that empties it: Gradio's cache writes None as "" and cannot read
        # that back for most components.
        return tuple(gr.update(value=None) if value is None else value for value in last)

    final.__signature__ = inspect.signature(fn)
    # preprocess=False: `fn` gets the values as the tab's own events do (they run with preprocess=False)
    examples = gr.Examples(rows, inputs, outputs, fn=final, cache_examples=True, cache_mode="lazy", preprocess=False,
                           example_labels=labels, **kwargs)
    if (found := EXAMPLE_SETS.get()) is not None:
        found.append(examples)
    return examples


class Shown:
    """What a streaming run's outputs show, sent whole at every step: `yield shown(progress=...)`.

    `blank` names every output of the event, in its order, with the value it shows when a run starts (None clears
    last run's result). A step names only what it changes; a change of None leaves that output as it is (a step
    without a preview). The rest is sent again as it stands rather than as gr.skip(), which Gradio meets by building
    a new component and its config (bench/bench.py's `bench_gradio_updates`: about 3x the cost of a value). Keep
    gr.skip() as the blank of an input the user may be typing into: a value sent again would overwrite it."""

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
    step only once the last thing it showed (at first, the request itself) is at least (streams running) /
    `per_second` seconds old, or when `always` picks it; its final output always. A stream alone at up to
    `per_second` steps a second shows every step; eight at once show what has come every 200 ms (at 40 a second);
    a run over within one such interval shows only its result. A step kept back when the final output comes is not
    shown: the output shows all it did. Each update costs the server a few ms on the cores the model runs on
    (bench/bench.py). Closing the paced stream (Stop, a closed tab) closes the one it reads, which cancels the run."""

    def __init__(self, per_second: float, always: Callable | None = None, keeps: Callable | None = None,
                 upstream: contextvars.ContextVar | None = None, first_after_s: float = 0.0):
        """`always(step)`: steps shown whatever the budget. `keeps(step)`: steps that carry something later steps may
        lack (a diffusion step's preview: a batch previews only some steps); the last such step kept back is shown in
        place of the next step shown that lacks it (its progress a step or two behind; the next update catches up).
        `upstream`: where a stream made as the first item is read looks for its pacing (pipelines/base.py's
        STEP_FILTER), to choose its steps in the worker that makes them: a step kept back there wakes no one.
        `first_after_s`: the first update comes no sooner than this after the request, if later than one interval
        (0.1 s: under it a person sees a result as instant, so a run that short shows its result alone)."""
        self.per_second, self.always, self.keeps, self.upstream = per_second, always, keeps, upstream
        self.first_after_s = first_after_s
        self.running = 0
        self.lock = threading.Lock()

    def __call__(self, items: Iterable) -> Iterator:
        """Pace `items`: steps may be kept back; anything else (the final output, a heartbeat) always passes."""
        with self.lock:
            self.running += 1
        frames = _Frames(self)
        iterator, end = iter(items), object()
        try:
            token = self.upstream.set(frames) if self.upstream else None
            try:  # a stream made lazily (a generator function's) is made here, and takes the pacing if it can
                item = next(iterator, end)
            finally:
                if token is not None:
                    self.upstream.reset(token)
            while item is not end:
                if not is_step(item) or frames.upstream:  # the final output, a heartbeat, a step already chosen
                    yield item
                else:
                    step = frames(item)
                    if step is not None:
                        yield step
                item = next(iterator, end)
        finally:
            with self.lock:
                self.running -= 1
            if hasattr(items, "close"):
                items.close()


class _Frames:
    """One paced stream's state: when it last showed something, and the last step with a preview kept back. Called
    with each step as it comes (in the consumer, or in the stream's worker once `take()`n): the step to show, or None."""

    def __init__(self, pacer: Pacer):
        self.pacer, self.shown, self.kept, self.upstream = pacer, time.monotonic(), None, False
        self.first = True  # nothing shown yet: the wait counts from the request

    def take(self) -> "_Frames":
        self.upstream = True
        return self

    def __call__(self, step):
        pacer, now = self.pacer, time.monotonic()
        wait = pacer.running / pacer.per_second
        if self.first:
            wait = max(wait, pacer.first_after_s)
        if now - self.shown < wait and not (pacer.always and pacer.always(step)):
            if pacer.keeps and pacer.keeps(step):
                self.kept = step
            return None
        if self.kept is not None and not pacer.keeps(step):
            step = self.kept
        self.shown, self.kept, self.first = now, None, False
        return step


SPECIAL_TOKENS = {"<|im_end|>": "end of reply", "<|endoftext|>": "end of text", "<|im_start|>": "start of a turn",
                  "</s>": "end of text", "<eos>": "end of text", "<|eot_id|>": "end of reply"}


def readable(token: str) -> str:
    """A token as a person reads it: quoted so its spaces show, a newline as ↵, a special token as words."""
    if token in SPECIAL_TOKENS:
        return f"[{SPECIAL_TOKENS[token]}]"
    return "'" + token.replace("\n", "↵").replace("\t", "⇥") + "'"


def candidates_label(step) -> dict | None:
    """A step's top-5 next-token candidates for gr.Label, {readable token: probability}, the one actually chosen
    marked ✓ (with temperature above 0 it is not always the likeliest)."""
    if step is None or "candidates" not in step.info:
        return None
    chosen = step.info.get("token")
    return {("✓ " if c["token"] == chosen else "") + readable(c["token"]): c["probability"]
            for c in step.info["candidates"]}


def load_settings(task: str, read_recipe, fields: dict, randomize: gr.Checkbox) -> None:
    """A "Load settings" box: a file this app made (its recipe inside) fills in `fields` ({argument name: component})
    and turns "Randomize seed" off, so Generate makes the same output again."""
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

    box.upload(fill, box, [*fields.values(), randomize], api_visibility="private", queue=False)


def preview_file(image, cache_dir: str) -> str:
    """A step's preview written once, as a PNG of its own in Gradio's cache folder (`component.GRADIO_CACHE`): the
    live image shows this file, and the gallery at the end names the same files again, so the browser, which has
    them, fetches nothing new. Handed the images instead, the gallery encoded and sent 8 new files (WebP) on the
    final update; and Gradio's own save rewrites a file in place whenever the same picture comes back, which a
    browser still fetching it could read half-written. A file in the cache folder is served as it is, not copied,
    and `delete_cache` removes it with the rest."""
    folder = os.path.join(cache_dir, "step-previews")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{uuid.uuid4().hex}.png")
    image.save(path, format="png")
    return path


def evenly(steps: list, k: int) -> list:
    """k items spread evenly over `steps`, always including the last."""
    if len(steps) <= k:
        return list(steps)
    return [steps[round(i * (len(steps) - 1) / (k - 1))] for i in range(k)]


RANDOM_SEED_JS = "(seed, randomize) => randomize ? Math.floor(Math.random() * 4294967295) : seed"


def seed_input() -> gr.Number:
    """The seed box every generating tab shows: an integer in [0, 2**32 - 1]."""
    return gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=2**32 - 1)
