"""Diffusion vs LLM, live: entry point. Settings -> presets -> demo -> launch -> warm-up.

    python app.py [--preset bundled|small|large] [--tab NAME] ...   (settings.py lists every flag)

The only module where the UI (demo/, gradio) and the models (pipelines/, torch) meet: it hands each tab the
callables it needs (`make_backend`). torch, diffusers and transformers are imported after the UI answers.
"""

import functools
import hmac
import os
import threading
import time

try:  # ZeroGPU Spaces: borrow a GPU for each call; elsewhere `spaces.GPU` does nothing.
    import spaces

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - spaces is in requirements.txt, but the app runs without it
    def gpu(fn):
        return fn

from demo.serving import CLIENT
from pipelines.audio import render_clip
from pipelines.base import ACTIVITY, HEARTBEAT_S, LOAD_LOCK, STEP_FILTER, output_path
from pipelines.compare import (
    branch,
    check_branch,
    check_compare,
    check_knobs,
    check_switch,
    check_switch_row,
    compare_stream,
    cost,
    dial,
    fill_gap,
    knobs,
    switch,
)
from pipelines.presets import build_pipelines
from pipelines.recipe import read_recipe
from pipelines.remote_app import RemoteDiffusionPipeline
from pipelines.specs import unknown_words
from pipelines.text_diffusion import records as text_diffusion_records
from pipelines.video import write_mp4
from settings import Settings, parse_settings


class Login:
    """`--auth USER:PASS` as Gradio's auth callable, slowed down for guessers. The password is compared in constant
    time. After `limit` wrong passwords for one user name from one address within `window_s` seconds, that pair is
    refused until the window has passed ("too many attempts, try again in N s"); an address that guesses under
    many names is refused after `limit * 4`. A guesser elsewhere never locks the right user out."""

    def __init__(self, user: str, password: str, limit: int = 5, window_s: float = 60.0):
        self.user, self.password, self.limit, self.window_s = user, password, limit, window_s
        self.failures: dict[tuple, list[float]] = {}  # (user, address) and (address,) -> times of wrong guesses
        self.lock = threading.Lock()

    def _recent(self, key: tuple, now: float) -> list[float]:
        times = [t for t in self.failures.get(key, []) if now - t < self.window_s]
        if times:
            self.failures[key] = times
        else:
            self.failures.pop(key, None)
        return times

    def __call__(self, user: str, password: str) -> bool:
        now, address = time.monotonic(), CLIENT.get()
        keys = {(user, address): self.limit, (address,): self.limit * 4}
        with self.lock:
            for key, limit in keys.items():
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = int(self.window_s - (now - times[0])) + 1
                    from fastapi import HTTPException

                    raise HTTPException(status_code=429, detail=f"Too many attempts; try again in {wait} s.")
            ok = hmac.compare_digest(f"{user}:{password}".encode(), f"{self.user}:{self.password}".encode())
            if not ok:
                for key in keys:
                    self.failures.setdefault(key, []).append(now)
            return ok


HEARTBEAT_EVERY_S = 0.25  # a stream the UI reads yields None this often while no step comes (pipelines.base)


def on_gpu(stream):
    """Wrap a stream method as a generator function, so `spaces.GPU` can hold the GPU while it runs, and make the
    stream beat while it waits: Gradio can close (cancel) a generator only between two of its items."""

    @gpu
    def run(*args, **kwargs):
        token = HEARTBEAT_S.set(HEARTBEAT_EVERY_S)
        try:
            steps = stream(*args, **kwargs)
        finally:
            HEARTBEAT_S.reset(token)
        yield from steps

    return run


def write_wav(output) -> dict:
    """An AudioOutput as the Audio tab shows it: a WAV file carrying its recipe, its spectrogram, and the same
    spectrogram through Griffin-Lim where the model has a learned vocoder (None elsewhere)."""
    wav, spectrogram = render_clip(output.audio, output.sample_rate, output.recipe)
    path = output_path(".wav")  # old clips there are deleted as new ones come
    with open(path, "wb") as f:
        f.write(wav)
    compared = getattr(output, "griffin_lim", None)
    if compared is not None:
        compared_wav, _ = render_clip(compared, output.sample_rate, output.recipe + ", Vocoder: Griffin-Lim")
        compared = output_path(".wav")
        with open(compared, "wb") as f:
            f.write(compared_wav)
    return {"audio": path, "spectrogram": spectrogram, "griffin_lim": compared}


def make_backend(pipelines: dict, tabs=None) -> dict:
    """For each tab (all, or those in `tabs`), the keyword arguments of its `build`: the callables it needs."""
    image, audio, video, text, text_diffusion = (pipelines[k] for k in ("image", "audio", "video", "text", "text_diffusion"))
    llm_slots = text.tuning.llm_slots if text.batched else 1  # replies written at once: llama.cpp batches them

    def slots(model) -> int:  # requests a diffusion tab takes at once: a batch here (image), several on a remote app
        if isinstance(model, RemoteDiffusionPipeline):
            return model.tuning.remote_slots
        return model.batcher.max_batch if getattr(model, "batcher", None) else 1

    def diffusion(model, finish) -> dict:
        return {"stream": on_gpu(model.stream), "info": model.info, "finish": finish, "check": model.check_inputs,
                "read_recipe": read_recipe, "unknown_words": lambda prompt: unknown_words(prompt, model.vocabulary),
                "concurrency": slots(model)}

    backend = {
        "image": lambda: diffusion(image, lambda out: {"image": out.image}),
        "audio": lambda: diffusion(audio, write_wav),
        "video": lambda: diffusion(video, lambda out: {
            "video": write_mp4(out.frames, out.fps, comment=out.recipe),
            "frames": [(f, f"frame {i + 1}") for i, f in enumerate(out.frames)]}),
        "text": lambda: {"stream": on_gpu(text.stream), "info": text.info, "check": text.check_inputs,
                         "concurrency": llm_slots},
        "text_diffusion": lambda: {
            "stream": on_gpu(text_diffusion.stream), "infill": on_gpu(text_diffusion.infill_stream),
            "info": text_diffusion.info, "records": text_diffusion_records,
            # block_length 0 (the tab's "whole canvas", and what a call without it sends) is gen_length
            "check": lambda p, n, steps, seed, block=0, threshold=0.0, editing=0.0: text_diffusion.check_inputs(
                p, n, steps, seed, text_diffusion.setting("temperature", None, 0.0), None if block == 0 else block,
                threshold, editing),
            "check_infill": text_diffusion.check_infill},
        "understand": lambda: {"understand": on_gpu(pipelines["understand"].stream), "info": text.info,
                               "check": pipelines["understand"].check_inputs},
        "translate": lambda: {"translate": on_gpu(pipelines["translate"].stream), "info": text.info,
                              "languages": list(pipelines["translate"].languages),
                              "check": pipelines["translate"].check_inputs, "concurrency": llm_slots},
        "differences": lambda: {
            "compare": on_gpu(lambda *args, **kwargs: compare_stream(image, text, *args, text_diffusion=text_diffusion,
                                                                     **kwargs)),
            "knobs": gpu(functools.lru_cache(maxsize=8)(lambda prompt, seed: knobs(image, text, prompt, seed))),
            "branch": gpu(lambda *args: branch(text, *args)), "switch": gpu(lambda *args: switch(image, *args)),
            "cost": gpu(lambda: cost(image, text, text_diffusion)), "info": image.info,
            "fill_gap": gpu(lambda *args: fill_gap(text_diffusion, text, *args)),
            "dial": gpu(lambda *args: dial(text_diffusion, text, *args)),
            "guided": {"image_stream": on_gpu(image.stream), "llm_stream": on_gpu(text.stream),
                       "text_diffusion_stream": on_gpu(text_diffusion.stream),
                       "fill_gap": gpu(lambda *args: fill_gap(text_diffusion, text, *args)),
                       "dial": gpu(lambda *args: dial(text_diffusion, text, *args))},
            "checks": {"compare": lambda *args: check_compare(image, text, *args), "branch": check_branch,
                       "switch": lambda *args: check_switch(image, *args), "switch_row": check_switch_row,
                       "knobs": check_knobs,
                       "fill_gap": lambda p, template, seed: text_diffusion.check_infill(p, template, 8, seed),
                       "dial": check_knobs}},
    }
    return {tab: make() for tab, make in backend.items() if tabs is None or tab in tabs}


def build_app(settings: Settings):
    """(demo, pipelines) for the settings; no model is loaded until its first request."""
    from demo.blocks import build_demo

    backends = {"text": settings.backends.get("text_backend"), "text_model": settings.backends.get("text_backend_model"),
                "text_api_key": settings.text_api_key, "hf_token": settings.hf_token,
                **{task: settings.backends.get(f"{task}_backend") for task in ("image", "audio", "video")}}
    pipelines = build_pipelines(settings.preset, settings.overrides, settings.device, backends, settings.tuning)
    backend = make_backend(pipelines, [settings.tab] if settings.tab else None)
    demo = build_demo(backend, settings.preset, settings.max_queue, token_updates_per_s=settings.token_updates_per_s,
                      diffusion_updates_per_s=settings.diffusion_updates_per_s, analytics=settings.analytics,
                      step_filter=STEP_FILTER)
    return demo, pipelines


def warm_up(pipelines: dict, quiet_s: float = 1.0) -> None:
    """Run once the UI is up, while the server answers: load the LLM (a fraction of a second on llama.cpp), then,
    once no request has run for `quiet_s`, import torch and diffusers, so a first image does not wait for them.
    Imports hold the GIL: run beside a first reply, they slow it down (bench/bench.py). A request that needs torch
    meanwhile imports it itself; Python's import lock makes it wait for this import rather than see half of it."""
    text = pipelines["text"]
    if not text.missing:
        try:
            text.load()
        except Exception as exc:  # noqa: BLE001  (its tab says so on first use)
            print(f"warm-up: the LLM did not load ({type(exc).__name__}: {exc}); the Text tab will say why")
    ACTIVITY.wait_idle(quiet_s)
    # Under the lock every model load holds: a request's own import of diffusers at the same moment could otherwise
    # meet this one half done, crossing module locks ("cannot import name 'DiffusionPipeline' from 'diffusers'").
    with LOAD_LOCK:
        import diffusers  # noqa: F401
        import torch  # noqa: F401


def examples_cache(settings: Settings) -> str:
    """Where Gradio keeps the examples' cached results (GRADIO_EXAMPLES_CACHE): in the app's cache folder, under a
    name made from everything that makes them (the code, the bundled models' files, the preset and its overrides,
    the Gradio version), so that a changed app starts a new cache instead of showing what an older one made."""
    import hashlib
    from pathlib import Path

    import gradio

    root = Path(__file__).resolve().parent
    digest = hashlib.sha1(repr((gradio.__version__, settings.preset, sorted(settings.overrides.items()),
                                sorted(settings.backends.items()))).encode())
    files = [*root.glob("*.py"), *root.glob("demo/*.py"), *root.glob("pipelines/*.py"), *root.glob("models/**/*")]
    for path in sorted(p for p in files if p.is_file()):
        digest.update(f"{path.relative_to(root)}:{path.stat().st_size}".encode())
        if path.suffix in (".py", ".json", ".txt"):  # a retrained model's training_info.json changes with it
            digest.update(path.read_bytes())
    return str(Path(settings.tuning.cache_dir) / "examples" / f"{settings.preset}-{digest.hexdigest()[:12]}")


def prefill_examples(example_sets: list, quiet_s: float = 1.0) -> None:
    """Make every example's cached result ahead of its first click, each once no request has run for `quiet_s` (the
    model's lock keeps a visitor's request from overlapping one): every tab's first example first, then the rest.
    A result already cached is read back, not made again. A failure is printed and that example is left to its
    first click (which shows the error)."""
    order = sorted(((i, examples) for examples in example_sets for i in range(len(examples.examples))),
                   key=lambda pair: pair[0])
    for i, examples in order:
        ACTIVITY.wait_idle(quiet_s)
        try:
            examples.load_from_cache(i)
        except Exception as exc:  # noqa: BLE001  (printed; the app keeps serving)
            print(f"prefill: example {i} of {examples.dataset.label!r} failed ({type(exc).__name__}: {exc})")


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    if settings.mcp:
        try:
            import mcp  # noqa: F401
        except ImportError:
            raise SystemExit("--mcp needs Gradio's MCP support: pip install 'gradio[mcp]==6.31.0'") from None
    from demo.blocks import launch_kwargs

    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", examples_cache(settings))  # before the demo's Examples exist
    demo, pipelines = build_app(settings)
    auth = Login(*settings.auth.split(":", 1)) if settings.auth else None
    demo.launch(server_name=settings.host, server_port=settings.port, share=settings.share, auth=auth,
                mcp_server=settings.mcp, prevent_thread_lock=True, **launch_kwargs(demo))
    warm_up(pipelines)
    if settings.prefill_examples:
        threading.Thread(target=prefill_examples, args=(demo.example_sets,), daemon=True, name="prefill").start()
    demo.block_thread()


if __name__ == "__main__":
    main()
