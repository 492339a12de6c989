"""The one interface: every model turns a request into a stream of steps, then a final result.

A diffusion step is one denoising iteration (its preview is the predicted clean output); an LLM
step is one token (its preview is the text so far, plus the top next-token candidates). The UI,
the API and the Key-differences tab all consume the same stream:

    for item in pipeline.stream(prompt="a red circle"):
        if isinstance(item, Step):
            print(item.index, item.total, item.elapsed)   # progress, previews, timing
        else:
            result = item                                  # the final output, always last

Stopping the iteration early (``break``, ``close()``, a dropped client) cancels the work at the
next step: the model runs in a worker thread that asks ``emit(step)`` before going on.
"""

import math
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Step:
    """One step of a generation: a denoising iteration or one token."""

    index: int  # 1-based: this is step `index` of `total`
    total: int  # planned number of steps (an LLM may stop earlier, at end-of-text)
    elapsed: float  # seconds since the request started
    preview: Any = None  # PIL image / (sample_rate, ndarray) / list of frames / text so far; None if previews are off
    info: dict = field(default_factory=dict)  # family-specific: timestep, token, probability, candidates...


@dataclass
class ImageOutput:
    image: Any  # PIL.Image (its info["parameters"] holds the recipe, so a saved PNG carries it)
    seed: int
    seconds: float
    steps: list[Step]
    recipe: str = ""  # how it was made, as AUTOMATIC1111 writes it (see `recipe_text`)


@dataclass
class AudioOutput:
    sample_rate: int
    audio: Any  # 1-D float32 ndarray in [-1, 1] (a clip peaking above -1 dBFS is scaled to peak there)
    seed: int
    seconds: float
    steps: list[Step]
    recipe: str = ""


@dataclass
class VideoOutput:
    frames: list  # PIL images
    fps: int
    seed: int
    seconds: float
    steps: list[Step]
    recipe: str = ""


@dataclass
class TextOutput:
    text: str
    seconds: float
    steps: list[Step]
    finish_reason: str = "length"  # "stop" (end-of-text), "length" (max_new_tokens) or "cancelled"


class Cancelled(Exception):
    """Raised inside a model's loop (e.g. from a legacy diffusers `callback`) when the consumer stopped."""


Emit = Callable[[Step | None], bool]  # hand a step to the consumer (None: just ask); False means "stop now"


# Intra-op CPU threads for each request's worker (env TORCH_THREADS). libgomp gives every thread that
# runs torch ops its own OpenMP team, and idle teams spin: once two threads have used two-thread teams
# on a 2-core machine, every call runs about 2x slower (bench/thread_teams.py measures it). One thread
# per request costs the tiny bundled models little (LLM tokens/s unchanged) and lets two requests, or
# both sides of Key differences, share the cores instead of fighting over them.
THREADS_PER_REQUEST = int(os.environ.get("TORCH_THREADS", "1"))


class Activity:
    """How many model requests are running, and for how long none has: the warm-up waits for a quiet moment
    before importing torch and diffusers, so that it never slows a first reply down (the import holds the GIL)."""

    def __init__(self) -> None:
        self.running, self.since = 0, time.monotonic()
        self.lock = threading.Lock()

    def __enter__(self) -> None:
        with self.lock:
            self.running += 1

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.running -= 1
            self.since = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request ended (0 while one runs)."""
        with self.lock:
            return 0.0 if self.running else time.monotonic() - self.since

    def wait_idle(self, seconds: float, poll: float = 0.05) -> None:
        """Return once no request has run for `seconds`."""
        while self.idle_for() < seconds:
            time.sleep(poll)


ACTIVITY = Activity()


def stream_steps(work: Callable[[Emit], Any], lock: threading.Lock, cpu: bool = True) -> Iterator[Any]:
    """Run ``work(emit)`` in a worker thread and yield each step it emits, then its return value.

    ``lock`` serialises requests to one model: diffusers schedulers and our own recorders keep
    per-call state on the pipeline object. Exceptions from ``work`` re-raise in the consumer.
    When the consumer stops early, ``emit`` starts returning False and we wait for the worker to
    wind down, so the next request never overlaps a cancelled one. ``cpu``: the work runs on the CPU,
    so the worker uses THREADS_PER_REQUEST intra-op threads.
    """
    items: queue.Queue = queue.Queue()
    cancelled = threading.Event()
    done = object()

    def emit(step: Step | None) -> bool:
        if step is not None and not cancelled.is_set():
            items.put(step)
        return not cancelled.is_set()

    def worker() -> None:
        torch = sys.modules.get("torch")  # not imported here: the interface, and llama.cpp, do not need torch
        if cpu and THREADS_PER_REQUEST > 0 and torch is not None:
            torch.set_num_threads(THREADS_PER_REQUEST)
        try:
            with ACTIVITY, lock:
                if cancelled.is_set():  # the consumer left while we queued for the model
                    return
                items.put(work(emit))
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, who re-raises it)
            items.put(exc)
        finally:
            items.put(done)

    thread = threading.Thread(target=worker, daemon=True, name="model-worker")
    thread.start()
    try:
        while (item := items.get()) is not done:
            if isinstance(item, Cancelled):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
        thread.join()


def final(stream: Iterator[Any]) -> Any:
    """Consume a stream and return its final output (the last item)."""
    item = None
    for item in stream:
        pass
    return item


# transformers' and diffusers' from_pretrained build each model on the meta device by patching torch
# globally (accelerate's init_empty_weights) for the length of the call, so a second model built in
# another thread meanwhile gets meta tensors ("Cannot copy out of meta tensor"). Every model load in
# this process holds this lock: the Key differences tab loads both kinds of model at once.
LOAD_LOCK = threading.RLock()


class Timer:
    """Seconds since construction; steps carry it as `elapsed`."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


OUTPUT_DIR = os.path.join(tempfile.gettempdir(), "diffusion-vs-llm")  # WAV / MP4 files handed to Gradio
OUTPUT_TTL_S = 15 * 60  # Gradio copies a returned file into its own cache at once; ours go after 15 minutes


def output_path(suffix: str) -> str:
    """A fresh file path for an output (".wav", ".mp4") in OUTPUT_DIR, deleting that folder's files older than
    OUTPUT_TTL_S first, so a long-running server does not fill the temp folder one clip at a time."""
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    now = time.time()
    for entry in os.scandir(OUTPUT_DIR):
        try:
            if entry.is_file() and now - entry.stat().st_mtime > OUTPUT_TTL_S:
                os.remove(entry.path)
        except OSError:  # another request removed it first
            pass
    fd, path = tempfile.mkstemp(suffix=suffix, dir=OUTPUT_DIR)
    os.close(fd)
    return path


def created_now() -> str:
    """This moment, to the microsecond (ISO 8601): written into every output file, so two identical requests never
    make byte-identical files, which Gradio's content-hashed cache would store at one path and rewrite under a
    download in progress."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


MAX_PROMPT_CHARS = 500  # a diffusion model's prompt (image, audio, video, text diffusion)


def default_device() -> str:
    """cuda when a GPU is there, else cpu (torch imported here: the interface itself does not need it)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_text(name: str, value: Any, max_chars: int, optional: bool = False) -> str:
    """A non-empty string of at most `max_chars` characters, stripped; else a ValueError naming it.

    `optional`: None or blank is fine too (a negative prompt), and comes back as "".
    """
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{name}` must be a non-empty text; got {value!r}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") cannot reach a tokenizer
        raise ValueError(f"`{name}` holds a character that is not valid Unicode text at position {exc.start}.") from None
    if len(value) > max_chars:
        raise ValueError(f"`{name}` is {len(value)} characters long; the limit is {max_chars}.")
    return value.strip()


def check_range(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    """`low <= value <= high` (and a whole number if `integer`); else a ValueError naming it."""
    kind = "a whole number" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and float(value) != int(value):
        ok = False
    if not ok or not low <= value <= high:
        raise ValueError(f"`{name}` must be {kind} between {low} and {high}; got {value!r}.")


def check_seed(seed: Any) -> int:
    """Seeds are whole numbers in [0, 2**32 - 1] (what torch.Generator and numpy both accept)."""
    check_range("seed", seed, 0, 2**32 - 1, integer=True)
    return int(seed)

