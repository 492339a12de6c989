"""Diffusion vs LLM, live: entry point. Settings (CLI + env) -> registry -> demo -> launch.

    python app.py [--preset bundled|small|large] [--port 7860] [--host 127.0.0.1] [--share] [--auth USER:PASS]
                  [--image-model ID] [--audio-model ID] [--video-model ID] [--video-adapter ID] [--text-model ID]
                  [--text-diffusion-model ID] [--mcp] [--max-queue 32]
                  [--text-backend URL [--text-backend-model NAME]] [--image-backend URL] [--audio-backend URL]
                  [--video-backend URL]

Every flag has an environment variable (PRESET, PORT, HOST, SHARE, AUTH, IMAGE_MODEL, ...), which is
how a Hugging Face Space or the Docker image sets them. This is the only module where the UI
(demo/, gradio) and the models (pipelines/, torch) meet.
"""

import argparse
import functools
import hmac
import os
import threading
import time
from dataclasses import dataclass

try:  # ZeroGPU Spaces: borrow a GPU for each call; elsewhere `spaces.GPU` does nothing.
    import spaces

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - spaces is in requirements.txt, but the app runs without it
    def gpu(fn):
        return fn

from demo.gradio_import import defer_mcp, defer_pandas, skip_stub_writing

skip_stub_writing()  # before gradio is first imported: about 40 % off `import gradio` (demo/gradio_import.py)
defer_pandas()  # gradio imports it everywhere and uses it only in requests: it loads on first use

from pipelines.audio import render_clip
from pipelines.base import ACTIVITY, LOAD_LOCK
from pipelines.compare import (branch, check_branch, check_compare, check_knobs, check_switch, check_switch_row, compare_stream,
                               cost, knobs, switch)
from pipelines.recipe import read_recipe
from pipelines.registry import PRESETS, build_pipelines, unknown_words
from pipelines.remote import REMOTE_SLOTS, RemoteDiffusionPipeline
from pipelines.text import LANGUAGES, LLM_SLOTS
from pipelines.text_diffusion import records as text_diffusion_records
from pipelines.video import write_mp4

OVERRIDES = ("image_model", "audio_model", "video_model", "video_adapter", "text_model", "text_diffusion_model")
# Models served elsewhere (pipelines/remote.py; README "Scaling out"): an OpenAI-compatible LLM server, and other
# instances of this app for the diffusion tabs. The LLM server's API key comes from the environment only
# (TEXT_BACKEND_API_KEY), a private Space's token from HF_TOKEN.
BACKENDS = ("text_backend", "text_backend_model", "image_backend", "audio_backend", "video_backend")


@dataclass
class Settings:
    preset: str = "bundled"  # which models: bundled (offline), small (Hub, CPU), large (Hub, GPU)
    port: int = 7860  # Spaces and the Dockerfile expect 7860
    host: str = "127.0.0.1"  # 0.0.0.0 to serve other machines (Docker, Spaces)
    share: bool = False  # a temporary public *.gradio.live link
    auth: str | None = None  # "user:password" to require a login
    device: str | None = None  # cpu / cuda; default: cuda when available
    overrides: dict | None = None  # {"image_model": "hub/id", ...}
    mcp: bool = False  # also serve every endpoint as an MCP tool at /gradio_api/mcp/ (gradio[mcp])
    max_queue: int = 32  # requests waiting at once, all endpoints together; more are refused at once ("queue is full")
    backends: dict | None = None  # {"text_backend": URL, "image_backend": URL, ...}: models served elsewhere


def parse_settings(argv: list[str] | None = None, env: dict | None = None) -> Settings:
    """CLI flags win over environment variables, which win over the defaults."""
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(description="Diffusion vs LLM, live")
    p.add_argument("--preset", choices=PRESETS, default=env.get("PRESET", "bundled"))
    p.add_argument("--port", type=int, default=int(env.get("PORT", env.get("GRADIO_SERVER_PORT", 7860))))
    p.add_argument("--host", default=env.get("HOST", env.get("GRADIO_SERVER_NAME", "127.0.0.1")))
    p.add_argument("--share", action="store_true", default=env.get("SHARE", "").lower() in ("1", "true", "yes"))
    p.add_argument("--auth", default=env.get("AUTH"), help="USER:PASS")
    p.add_argument("--device", default=env.get("DEVICE"))
    p.add_argument("--max-queue", type=int, default=int(env.get("MAX_QUEUE", 32)),
                   help="requests that may wait at once; more are refused at once with 'queue is full' (env MAX_QUEUE)")
    p.add_argument("--mcp", action="store_true", default=env.get("MCP", "").lower() in ("1", "true", "yes"),
                   help="also serve the endpoints as MCP tools at /gradio_api/mcp/ (env MCP)")
    for name in OVERRIDES:
        p.add_argument("--" + name.replace("_", "-"), default=env.get(name.upper()),
                       help=f"override the preset's model (env {name.upper()})")
    helps = {"text_backend": "an OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama) to run the LLM on",
             "text_backend_model": "the model name on --text-backend (default: the first it lists)",
             "image_backend": "another instance of this app (or a Space running it) to run the image model on",
             "audio_backend": "likewise for the audio model", "video_backend": "likewise for the video model"}
    for name in BACKENDS:
        p.add_argument("--" + name.replace("_", "-"), default=env.get(name.upper()), help=f"{helps[name]} (env {name.upper()})")
    args = p.parse_args(argv)
    if args.auth is not None and (":" not in args.auth or not all(args.auth.split(":", 1))):
        p.error("--auth must look like USER:PASS")
    overrides = {name: getattr(args, name) for name in OVERRIDES if getattr(args, name)}
    if args.max_queue < 1:
        p.error("--max-queue must be at least 1")
    backends = {name: getattr(args, name) for name in BACKENDS if getattr(args, name)}
    for name in ("text_backend", "image_backend", "audio_backend", "video_backend"):
        url = backends.get(name, "")
        if url and not url.startswith(("http://", "https://")) and (name == "text_backend" or url.count("/") != 1):
            p.error(f"--{name.replace('_', '-')} must be a URL (http://host:port)"
                    + ("" if name == "text_backend" else " or a Space id (user/space)") + f"; got {url!r}")
    return Settings(args.preset, args.port, args.host, args.share, args.auth, args.device, overrides, args.mcp,
                    args.max_queue, backends)


class Login:
    """`--auth USER:PASS` as Gradio's auth callable, slowed down for guessers: the password is compared in
    constant time, and after `limit` wrong passwords within `window_s` seconds every login is refused, the right
    one too, until the window has passed (Gradio's own tuple auth answers every guess at once, 30 in 0.05 s)."""

    def __init__(self, user: str, password: str, limit: int = 5, window_s: float = 60.0):
        self.user, self.password, self.limit, self.window_s = user, password, limit, window_s
        self.failures: list[float] = []  # times of recent wrong guesses
        self.lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        now = time.monotonic()
        with self.lock:
            self.failures = [t for t in self.failures if now - t < self.window_s]
            if len(self.failures) >= self.limit:
                return False
            ok = hmac.compare_digest(f"{user}:{password}".encode(), f"{self.user}:{self.password}".encode())
            if not ok:
                self.failures.append(now)
            return ok


def on_gpu(stream):
    """Wrap a stream method as a generator function, so `spaces.GPU` can hold the GPU while it runs."""

    @gpu
    def run(*args, **kwargs):
        yield from stream(*args, **kwargs)

    return run


def make_backend(pipelines: dict) -> dict:
    """For each tab, the keyword arguments of its `build`: the callables it needs and what to show."""
    image, audio, video, text, text_diffusion = (pipelines[k] for k in ("image", "audio", "video", "text", "text_diffusion"))
    llm_slots = LLM_SLOTS if text.batched else 1  # replies written at once: llama.cpp (or a remote server) batches them

    def slots(model) -> int:  # requests a diffusion tab takes at once: a batch here (image), several on a remote app
        if isinstance(model, RemoteDiffusionPipeline):
            return REMOTE_SLOTS
        return model.batcher.max_batch if getattr(model, "batcher", None) else 1

    return {
        "image": {"stream": on_gpu(image.stream), "info": image.info, "read_recipe": read_recipe,
                  "unknown_words": lambda prompt: unknown_words(prompt, image.vocabulary),
                  "check": lambda *args: image.check_inputs(*args[:7]), "concurrency": slots(image)},
        "audio": {"stream": on_gpu(audio.stream), "info": audio.info, "render": render_clip, "read_recipe": read_recipe,
                  "unknown_words": lambda prompt: unknown_words(prompt, audio.vocabulary),
                  "check": lambda p, n, duration, steps, guidance, seed, *_: audio.check_inputs(p, n, duration, steps, guidance, seed),
                  "concurrency": slots(audio)},
        "video": {"stream": on_gpu(video.stream), "info": video.info, "to_mp4": write_mp4, "read_recipe": read_recipe,
                  "unknown_words": lambda prompt: unknown_words(prompt, video.vocabulary),
                  "check": lambda *args: video.check_inputs(*args[:6]), "concurrency": slots(video)},
        "text": {"stream": on_gpu(text.stream), "info": text.info, "check": text.check_inputs, "concurrency": llm_slots},
        "text_diffusion": {"stream": on_gpu(text_diffusion.stream), "info": text_diffusion.info,
                           "records": text_diffusion_records,
                           "check": lambda p, n, steps, seed: text_diffusion.check_inputs(p, n, steps, seed, 0.0)},
        "understand": {"understand": on_gpu(text.understand_stream), "info": text.info, "check": text.check_understand},
        "translate": {"translate": on_gpu(text.translate_stream), "info": text.info, "languages": list(LANGUAGES),
                      "check": text.check_translate, "concurrency": llm_slots},
        "differences": {
            "compare": on_gpu(lambda *args, **kwargs: compare_stream(image, text, *args, text_diffusion=text_diffusion,
                                                                     **kwargs)),
            "knobs": gpu(functools.lru_cache(maxsize=8)(lambda prompt, seed: knobs(image, text, prompt, seed))),
            "branch": gpu(lambda *args: branch(text, *args)), "switch": gpu(lambda *args: switch(image, *args)),
            "cost": gpu(lambda: cost(image, text, text_diffusion)), "info": image.info,
            "checks": {"compare": lambda *args: check_compare(image, text, *args), "branch": check_branch,
                       "switch": lambda *args: check_switch(image, *args), "switch_row": check_switch_row,
                       "knobs": check_knobs}},
    }


def build_app(settings: Settings):
    """(demo, pipelines) for the settings; no model is loaded until its first request."""
    from demo.app_ui import build_demo

    pipelines = build_pipelines(settings.preset, settings.overrides, settings.device, backends_of(settings))
    return build_demo(make_backend(pipelines), settings.preset, settings.max_queue), pipelines


def backends_of(settings: Settings) -> dict:
    """The settings' remote models as `build_pipelines` takes them."""
    b = settings.backends or {}
    return {"text": b.get("text_backend"), "text_model": b.get("text_backend_model"),
            "text_api_key": os.environ.get("TEXT_BACKEND_API_KEY"),
            **{task: b.get(f"{task}_backend") for task in ("image", "audio", "video")}}


def backend_for_tab(tab: str) -> dict:
    """Keyword arguments for one tab's `build` on the settings from env/CLI (for `python -m demo.<tab>_tab`)."""
    settings = parse_settings([])
    return make_backend(build_pipelines(settings.preset, settings.overrides, settings.device, backends_of(settings)))[tab]


def warm_up(pipelines: dict, quiet_s: float = 1.0) -> None:
    """Run once the UI is up, while the server answers: load the LLM (a fraction of a second on llama.cpp), then,
    once no request has run for `quiet_s`, import torch, diffusers and pandas, which the app itself no longer
    imports at start, so a first image or plot does not wait for them. Imports hold the GIL: run beside a first
    reply, they slowed it from about 1.5 s to 3.3 s (bench/bench.py)."""
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

        from pipelines import mel_diffusion  # noqa: F401
    import pandas

    pandas.DataFrame  # noqa: B018  (deferred at start, demo/gradio_import.py: the first attribute read imports it)


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    if not settings.mcp:
        defer_mcp()  # gradio is imported (just below) without the MCP SDK it would load for nothing
    from demo.app_ui import launch_kwargs

    demo, pipelines = build_app(settings)
    auth = Login(*settings.auth.split(":", 1)) if settings.auth else None
    demo.launch(server_name=settings.host, server_port=settings.port, share=settings.share, auth=auth,
                mcp_server=settings.mcp, prevent_thread_lock=True, **launch_kwargs())
    warm_up(pipelines)
    demo.block_thread()


if __name__ == "__main__":
    main()
