"""What image, audio and video share: a lazily loaded diffusers pipeline, run as a stream of steps.

Each denoising iteration becomes a `Step`, whose preview is decoded from the scheduler's
*predicted clean sample* (x0) at that step, not from the noisy latents: that is what shows a whole
picture being refined from coarse to fine. Cancelling uses diffusers' own mechanisms:
`callback_on_step_end` + `pipe._interrupt` where the pipeline supports it, else the legacy
`callback`, from which we raise `Cancelled`.

torch and diffusers are imported on first use, not with this module, so that the app (and its input
checks) start without them (pipelines.warm_up imports them in the background).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch is imported on first use
    import torch

from .base import LOAD_LOCK, Cancelled, Emit, Step, Timer, Tuning, default_device
from .checks import InvalidInput
from .specs import ModelSpec, known_words, resolve_path


class DiffusionModel:
    """Base for the diffusion families: spec + lazy, cached, locked diffusers pipeline."""

    task = "diffusion"
    LIMITS: dict = {}  # input ranges where the spec gives none: {"name": (low, high[, multiple])}

    def __init__(self, spec: ModelSpec, missing: str | None = None, device: str | None = None,
                 tuning: Tuning | None = None):
        self.spec = spec
        self.missing = missing  # why the model cannot load (bundled folder absent), or None
        self._device = device
        self.tuning = tuning or Tuning()
        self._preview = None  # the preview decoder, loaded on first use (False: none could be)
        self.lock = threading.Lock()  # one request at a time per model (scheduler state is per pipeline)
        self._pipe = None

    @property
    def device(self) -> str:
        """cpu / cuda: as given, else cuda when there is a GPU (asking torch, on first use)."""
        if self._device is None:
            self._device = default_device()
        return self._device

    @property
    def dtype(self):
        import torch

        return torch.float16 if self.device.startswith("cuda") else torch.float32

    @property
    def pipe(self):
        """The diffusers pipeline, loaded on first use (thread-safe, once)."""
        if self._pipe is None:
            if self.missing:
                raise RuntimeError(self.missing)
            with LOAD_LOCK:
                if self._pipe is None:
                    path = resolve_path(self.spec.model_id)
                    try:
                        pipe = self.load(path)
                    except Exception as exc:  # noqa: BLE001  (re-raised, saying which file is broken)
                        raise RuntimeError(damaged_weights(path, exc)) from exc
                    pipe.set_progress_bar_config(disable=True)
                    self._pipe = pipe.to(self.device)
        return self._pipe

    def preview_decoder(self):
        """The tiny decoder that makes step previews (the spec's `preview_decoder`, an AutoencoderTiny: TAESD's class),
        loaded on first use; None where the spec names none (previews then go through the model's own VAE)."""
        if self.spec.preview_decoder is None or self._preview is False:
            return None
        if self._preview is None:
            with LOAD_LOCK:
                if self._preview is None:
                    from diffusers import AutoencoderTiny

                    try:
                        tiny = AutoencoderTiny.from_pretrained(resolve_path(self.spec.preview_decoder), dtype=self.dtype)
                        self._preview = tiny.to(self.device).eval()
                    except Exception as exc:  # noqa: BLE001  (absent or offline: the VAE makes the previews)
                        print(f"preview decoder {self.spec.preview_decoder} not loaded ({type(exc).__name__}): "
                              "step previews go through the model's VAE")
                        self._preview = False
        return self._preview or None

    def decode_latents(self, pipe, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (batch, 3, h, w) from a batch of the model's latents: through the preview decoder where
        there is one, else the model's VAE (about 10x the cost for the bundled model: bench/previews.py)."""
        import torch

        vae = pipe.vae
        latents = latents / vae.config.scaling_factor + (getattr(vae.config, "shift_factor", None) or 0.0)
        decoder = self.preview_decoder()
        with torch.no_grad():
            if decoder is not None:
                # An AutoencoderTiny takes the VAE's latents divided by its own scaling_factor (1 for TAESD).
                latents = latents / decoder.config.scaling_factor
                return decoder.decode(latents.to(decoder.dtype)).sample.float().clamp(-1, 1)
            return vae.decode(latents.to(vae.dtype), return_dict=False)[0].float().clamp(-1, 1)

    def load(self, path: str):  # overridden where a family needs more than DiffusionPipeline
        from diffusers import DiffusionPipeline

        return DiffusionPipeline.from_pretrained(path, dtype=self.dtype)

    @property
    def limits(self) -> dict:
        """Every input range this model checks: the spec's, else the family's."""
        return {**self.LIMITS, **self.spec.limits}

    def limit(self, name: str) -> tuple:
        return self.limits[name]

    def setting(self, name: str, value, fallback):
        """A request's value, else this model's default (the spec), else `fallback`."""
        return self.spec.defaults.get(name, fallback) if value is None else value

    @property
    def threads(self) -> int | None:
        """Intra-op torch threads for this model's requests (None on a GPU: the threads only feed it)."""
        return self.tuning.torch_threads if self.device == "cpu" else None

    @property
    def vocabulary(self) -> list[str] | None:
        """The closed vocabulary of a bundled model (its training_info.json), None for Hub models."""
        return known_words(self.spec.model_id)

    @property
    def info(self) -> dict:
        """What the UI shows about this model: id, licence, defaults, limits, readiness, vocabulary."""
        return {"task": self.task, "model_id": self.spec.model_id, "licence": self.spec.licence,
                "defaults": dict(self.spec.defaults), "limits": self.limits, "missing": self.missing,
                "vocabulary": self.vocabulary}


def damaged_weights(path: str, exc: Exception) -> str:
    """Why a model failed to load, naming the damaged weights file when a local one does not read back
    (a truncated download or copy gives the loader's generic "incomplete metadata" otherwise)."""
    from pathlib import Path

    from safetensors import safe_open

    for file in sorted(Path(path).rglob("*.safetensors")) if Path(path).is_dir() else []:
        try:
            with safe_open(str(file), "pt") as f:
                for key in f.keys():
                    f.get_tensor(key)
        except Exception as bad:  # noqa: BLE001  (any read failure marks the file)
            return (f"The weights file {file} is damaged ({type(bad).__name__}: {bad}); "
                    "restore it (git checkout, or retrain / re-download the model).")
    return f"Could not load the model {path}: {type(exc).__name__}: {exc}"


def predicted_x0(scheduler, output, model_output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
    """The clean sample the model predicts at this step, for any common diffusers scheduler."""
    x0 = getattr(output, "pred_original_sample", None)  # DDPM, DDIM, Euler, LCM, ...
    if x0 is not None:
        return x0
    if type(scheduler).__name__.startswith("FlowMatch"):  # x_t = (1 - s) x0 + s noise; model predicts noise - x0
        sigma = scheduler.sigmas[scheduler.step_index - 1].to(sample.device, sample.dtype)
        return sample - sigma * model_output
    if getattr(scheduler, "model_outputs", None) and scheduler.model_outputs[-1] is not None:
        return scheduler.model_outputs[-1]  # DPM-Solver(++): keeps its x0 predictions
    return output[0] if isinstance(output, tuple) else output.prev_sample  # last resort: the next latents


@contextlib.contextmanager
def recording_x0(scheduler):
    """Patch `scheduler.step` for one call so that `record["x0"]` holds the latest x0 prediction."""
    record = {"x0": None}
    step = scheduler.step

    def recording_step(model_output, timestep, sample, *args, **kwargs):
        output = step(model_output, timestep, sample, *args, **kwargs)
        record["x0"] = predicted_x0(scheduler, output, model_output, sample)
        return output

    scheduler.step = recording_step
    try:
        yield record
    finally:
        del scheduler.step  # back to the class's method


def denoise(pipe, call_kwargs: dict, emit: Emit, total: int, decode: Callable | None, timer: Timer,
            on_step_end: Callable | None = None, preview_share: float | None = None, threads: int | None = None,
            previews_per_s: float | None = None):
    """Call `pipe(**call_kwargs)`, emitting one Step per denoising iteration. Returns (output, steps).

    `decode(x0_latents)` makes the preview, or None for previews off. Previews are decoded on a
    second thread while the next step runs, so on a multi-core CPU they cost the denoising almost
    nothing (bench/bench.py: previews on vs off); steps still reach the consumer in order, each with
    its preview, and all of them before the final output. The step's info holds the timestep and the
    step's own duration (decoding excluded). `on_step_end(pipe, i, callback_kwargs)` may return tensors to
    replace (e.g. {"prompt_embeds": ...}); it needs a pipeline with `callback_on_step_end`.

    `preview_share` (a batch, whose previews cost a decode per request): previews are decoded on this thread, with
    every core, and only while decoding has so far taken less than that share of the time, so a batch spends about
    that share on them (one decode more at most); the last step's is always decoded (README: Benchmarks).

    `previews_per_s` (otherwise): at most that many previews a second, the first and last steps' always; the other
    steps go without one. A tab passes the rate its screen updates at: the steps it would not show were decoded for
    nothing, on the core the server's own work needs (over HTTP a preview at every step cost a lone image about 4 ms
    a step, 15 %).
    """
    import torch

    steps: list[Step] = []
    last = [timer()]
    start, decoding = last[0], [0.0]  # seconds spent decoding inline previews (preview_share)
    previewed = [None]  # timer() of the last step given a preview (previews_per_s)
    going = [True]  # what the latest emit said: False once the consumer has stopped
    params = inspect.signature(pipe.__call__).parameters

    def show(step: Step, x0: torch.Tensor | None) -> None:
        if not going[0]:
            return  # stopped: don't decode what nobody will see
        if x0 is not None:
            step.preview = decode(x0)
        going[0] = emit(step) and going[0]

    shown = []  # futures, checked at the end so that a failed decode raises here
    threads = threads if threads and threads > 0 else torch.get_num_threads()  # the preview thread's, as the worker's
    previewer = ThreadPoolExecutor(1, thread_name_prefix="preview", initializer=torch.set_num_threads, initargs=(threads,))
    with recording_x0(pipe.scheduler) as record, previewer:

        def on_step(index: int, timestep) -> bool:
            now = timer()
            info = {"timestep": round(float(timestep), 3), "seconds": round(now - last[0], 4)}
            last[0] = now
            step = Step(index=index + 1, total=total, elapsed=now, preview=None, info=info)
            steps.append(step)
            x0 = record["x0"]
            if decode is None:  # previews off: straight to the consumer
                return emit(step)
            if preview_share is not None:  # inline, within its share of the time
                if x0 is not None and (index + 1 == total or decoding[0] < preview_share * (now - start)):
                    step.preview = decode(x0)
                    last[0] = timer()  # the decode is not the next step's time
                    decoding[0] += last[0] - now
                return emit(step)
            if x0 is not None and previews_per_s and previewed[0] is not None and index + 1 < total \
                    and now - previewed[0] < 1 / previews_per_s:
                x0 = None  # sooner than the screen shows a step: this one goes without (never the first or last)
            if x0 is not None:
                previewed[0] = now
            shown.append(previewer.submit(show, step, x0.detach().clone() if x0 is not None else None))  # in order
            return emit(None) and going[0]  # asks the consumer now: a stop ends the loop at this step

        if "callback_on_step_end" in params:  # modern diffusers pipelines

            def callback_on_step_end(p, i, t, callback_kwargs):
                if not on_step(i, t):
                    p._interrupt = True
                return on_step_end(p, i, callback_kwargs) if on_step_end else callback_kwargs

            extra = {"callback_on_step_end_tensor_inputs": ["latents", "prompt_embeds"]} if on_step_end else {}
            output = pipe(**call_kwargs, callback_on_step_end=callback_on_step_end, **extra)
        else:  # AudioLDM(2) and other pipelines with the legacy callback
            if on_step_end:
                raise InvalidInput("prompt_after", f"{type(pipe).__name__} has no callback_on_step_end: its prompt "
                                                   "cannot be switched mid-way.")

            def callback(i, t, latents):
                if not on_step(i, t):
                    raise Cancelled()

            output = pipe(**call_kwargs, callback=callback, callback_steps=1)
    for future in shown:
        future.result()
    return output, steps


def generator_for(seed: int) -> torch.Generator:
    """A CPU generator: the same seed gives the same noise on every device."""
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


class Request:
    """One request waiting in a `DiffusionBatcher`: its settings, its own `emit`, and (once run) its result."""

    def __init__(self, key: tuple, args: dict, emit: Emit):
        self.key, self.args, self.emit = key, args, emit
        self.alive = True  # False once its consumer has stopped
        self.done = threading.Event()
        self.result, self.error = None, None


class CpuMeter:
    """How many cores other processes kept busy between `start()` and `busy_elsewhere()`: the machine's busy time
    from /proc/stat (Linux) less this process's own CPU time, over the wall time. None where /proc/stat is missing or
    the window was too short to say. A batch sizes its thread team by it (bench/batch_threads.py): with both cores
    free, a batch of 8 on 2 threads took 2.32 s against 3.50 s on one; with one core busy elsewhere, 7.03 s against
    3.34 s, because the team waits at every barrier for the thread that shares its core (OMP_WAIT_POLICY=PASSIVE
    did not save it: 4.21 s busy, and 3.18 s quiet)."""

    def __init__(self) -> None:
        self.mark = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        return time.monotonic(), busy, time.process_time()

    def start(self) -> None:
        self.mark = self._read()

    def busy_elsewhere(self, window_s: float = 0.05) -> float | None:
        """Cores busy elsewhere since `start()`, waiting until `window_s` has passed if it has not (the kernel counts
        in ticks of 10 ms: a shorter window cannot tell)."""
        then = self.mark
        if then is None:
            return None
        time.sleep(max(0.0, then[0] + window_s - time.monotonic()))
        now = self._read()
        return max(0.0, ((now[1] - then[1]) - (now[2] - then[2])) / (now[0] - then[0]))


class DiffusionBatcher:
    """Concurrent requests of one model with the same settings (`key`: steps, guidance, size...), denoised together
    as one batch: on a CPU a batch of 8 costs about half of 8 calls in turn (bench/bench.py), and on a GPU far less.

    `run_batch(requests)` runs on the batcher's own thread, under the model's lock, and sets each request's result or
    error. Each request keeps its own seed, previews and cancel: `submit` returns as soon as its consumer stops, and
    a batch whose consumers have all stopped is interrupted. Requests that arrive while a batch runs wait for the
    next one (a diffusion batch cannot take a newcomer mid-way: every member is at the same step).

    A batch starts once requests have stopped arriving for `gather_s` (at most `gather_max_s` after the first), or
    when it is full: requests sent together reach it milliseconds apart, and started on the first they would make a
    batch of one and then another (README: Benchmarks). A request alone waits `gather_s` more: 30 ms. Requests sent
    together arrived about 13 ms apart; at 20 ms eight sent at once through the server gave the same throughput as
    at 50 ms, quiet and with one core busy elsewhere, and 50 ms cost each lone image 30 ms more."""

    def __init__(self, run_batch: Callable[[list[Request]], None], lock: threading.Lock, max_batch: int = 8,
                 gather_s: float = 0.03, gather_max_s: float = 0.25):
        self.run_batch, self.lock, self.max_batch = run_batch, lock, max_batch
        self.gather_s, self.gather_max_s = gather_s, gather_max_s
        self.queue: list[Request] = []
        self.last_arrival = 0.0  # time.monotonic() of the latest submit
        self.cv = threading.Condition()
        self.thread: threading.Thread | None = None
        self.meter = CpuMeter()  # started as each batch starts gathering

    def submit(self, key: tuple, args: dict, emit: Emit):
        """Run one request (from its stream_steps worker); its result, or None if its consumer stopped first."""
        request = Request(key, args, emit)
        with self.cv:
            self.queue.append(request)
            self.last_arrival = time.monotonic()
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, daemon=True, name="diffusion-batcher")
                self.thread.start()
            self.cv.notify()
        while not request.done.wait(0.05):
            if not emit(None):  # stopped while waiting or running: its batch goes on without it
                request.alive = False
                return None
        if request.error is not None:
            raise request.error
        return request.result

    def _loop(self) -> None:
        """Run batches until none is waiting; then this thread ends, and the next submit starts another. A live thread
        that ran torch keeps libgomp's worker pool, which torch and llama.cpp's ggml share: with more OpenMP threads
        alive than cores, ggml's barriers sleep, and the LLM decoded 40 % slower after the first image (README:
        Benchmarks)."""
        while True:
            with self.cv:
                if not self.queue:
                    self.thread = None
                    return
                self.meter.start()
                self._gather()
            with self.lock:  # the model is free: take what has queued meanwhile (the oldest request's settings)
                with self.cv:
                    key = self.queue[0].key
                    batch = [r for r in self.queue if r.key == key][: self.max_batch]
                    self.queue = [r for r in self.queue if r not in batch]
                try:
                    if any(r.alive for r in batch):
                        self.run_batch([r for r in batch if r.alive])
                except BaseException as exc:  # noqa: BLE001  (every member of the batch gets it)
                    for r in batch:
                        r.error = r.error or exc
                finally:
                    for r in batch:
                        r.done.set()

    def cores_free(self) -> int | None:
        """For `run_batch`: the cores no other process used since the running batch began to gather (None where that
        cannot be told), waiting until the meter's window has passed. Ask only where the answer changes something (a
        team of more than one thread): a request alone at one thread used to wait the 50 ms window for nothing."""
        busy = self.meter.busy_elsewhere()
        return None if busy is None else max(1, (os.cpu_count() or 1) - round(busy))

    def _gather(self) -> None:
        """Wait (holding `cv`) while requests with the oldest one's settings are still arriving and the batch has room."""
        first = time.monotonic()
        while sum(r.key == self.queue[0].key for r in self.queue) < self.max_batch:
            now = time.monotonic()
            left = min(self.last_arrival + self.gather_s, first + self.gather_max_s) - now
            if left <= 0:
                return
            self.cv.wait(left)
