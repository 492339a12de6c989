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

import contextvars
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
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


@dataclass(frozen=True)
class Tuning:
    """How the models share this machine's cores; settings.py fills it from flags and environment variables, and
    presets.build_pipelines hands it to every pipeline. bench/bench.py measures each choice."""

    # Intra-op CPU threads for each request's worker (TORCH_THREADS). libgomp gives every thread that runs torch ops
    # its own OpenMP team, and idle teams spin: two threads with two-thread teams on 2 cores run each call about 2x
    # slower (bench/thread_teams.py). One thread per request lets two requests share the cores.
    torch_threads: int = 1
    image_batch: int = 8  # concurrent image requests with the same settings denoised as one batch (IMAGE_BATCH)
    batch_preview_share: float = 0.15  # share of a batch's time its step previews may take (BATCH_PREVIEW_SHARE)
    llm_engine: str = "auto"  # auto / llama.cpp / transformers (LLM_ENGINE)
    llm_slots: int = 8  # replies llama.cpp decodes together (LLM_SLOTS; 1: one at a time)
    llama_cpp_weights: str = "Q8_0"  # the weight type llama.cpp runs a GGUF as, or "shipped" (LLAMA_CPP_WEIGHTS)
    remote_slots: int = 4  # requests in flight to one remote app (REMOTE_SLOTS)
    backend_timeout_s: float = 120.0  # silence from a remote longer than this is an error (BACKEND_TIMEOUT_S)
    # Where files derived from the models are kept (APP_CACHE, else $XDG_CACHE_HOME/diffusion-vs-llm): the re-rounded GGUF.
    cache_dir: str = os.path.expanduser("~/.cache/diffusion-vs-llm")


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


# Seconds between the heartbeats (None items) a stream yields while no step comes, for a consumer that must be able to
# stop it while it waits: Gradio closes an event's generator only between two items, so a request cancelled while
# its model loads or waits for a slot would otherwise run on until its first step. Set by the consumer around the
# call that makes the stream (app.py); unset (None), a stream yields no heartbeat.
HEARTBEAT_S: contextvars.ContextVar[float | None] = contextvars.ContextVar("heartbeat_s", default=None)

# Which steps a stream hands on, decided in its worker as each comes, set by the consumer around the call that makes
# the stream (demo/widgets.py's Pacer, which shows a person at most so many steps a second): `take()` on it returns a
# function of a step, giving the step to hand on (that one or one held from before) or None to keep it back. A step
# kept back never wakes the consumer's thread, which took the GIL from the model at every step (in one process, 0.3 ms
# of a 3 ms text-diffusion step). Unset (None), every step is handed on.
STEP_FILTER: contextvars.ContextVar = contextvars.ContextVar("step_filter", default=None)


def stream_steps(work: Callable[[Emit], Any], lock, threads: int | None = None, join_s: float = 0.05) -> Iterator[Any]:
    """Run ``work(emit)`` in a worker thread and yield each step it emits, then its return value.

    ``lock`` serialises requests to one model: diffusers schedulers and our own recorders keep
    per-call state on the pipeline object. Exceptions from ``work`` re-raise in the consumer.
    When the consumer stops early, ``emit`` starts returning False and the worker winds down at its next step; the
    model's lock keeps the next request from overlapping it. ``threads``: intra-op CPU threads
    for torch in this worker (Tuning.torch_threads), for work that runs torch on the CPU; None: work that does not.
    With HEARTBEAT_S set where the stream is made, a None comes every that many seconds without a step; with
    STEP_FILTER set, only the steps its filter hands on (the final output always comes). `join_s`:
    how long closing the stream waits for the worker (a remote job's worker cancels it on its next update, and a
    client's next job should not start before that).

    Whatever fails in the worker, the failure reaches the consumer: no request waits on a dead thread.
    """
    step_filter = STEP_FILTER.get()
    return _stream_steps(work, lock, threads, HEARTBEAT_S.get(), join_s, step_filter.take() if step_filter else None)


def _stream_steps(work, lock, threads, heartbeat, join_s, keep=None) -> Iterator[Any]:
    items: queue.Queue = queue.Queue()
    cancelled = threading.Event()
    done = object()

    def emit(step: Step | None) -> bool:
        if step is not None and not cancelled.is_set():
            step = keep(step) if keep else step
            if step is not None:
                items.put(step)
        return not cancelled.is_set()

    def worker() -> None:
        try:
            if threads and threads > 0:  # work that runs torch (which the warm-up may be importing right now:
                import torch  # `import` waits for it to finish, where sys.modules could hand out a half-made module)

                torch.set_num_threads(threads)
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
        while True:
            try:
                item = items.get(timeout=heartbeat)
            except queue.Empty:  # nothing yet (loading, queued for the model, reading the prompt)
                yield None
                continue
            if item is done:
                break
            if isinstance(item, Cancelled):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # The worker stops at its next emit. It is not waited for here: a consumer closing this stream may be an event
        # loop (Gradio closes a cancelled event's generator in its /cancel route), and the model's lock keeps the
        # next request from overlapping whatever the worker finishes.
        cancelled.set()
        thread.join(timeout=join_s)


def final(stream: Iterator[Any]) -> Any:
    """Consume a stream and return its final output (the last item)."""
    item = None
    for item in stream:  # noqa: B007  (the last one is kept)
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
    from datetime import datetime

    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_device() -> str:
    """cuda when a GPU is there, else cpu (torch imported here: the interface itself does not need it)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class BackendError(RuntimeError):
    """A remote model server is down, too slow, or refused the request (the message names it)."""
