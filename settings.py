"""Every flag and environment variable of the app, parsed once (`parse_settings`) and passed down.

    python app.py [--preset bundled|small|large] [--port 7860] [--host 127.0.0.1] [--share] [--auth USER:PASS]
                  [--image-model ID] [--audio-model ID] [--video-model ID] [--video-adapter ID] [--text-model ID]
                  [--text-diffusion-model ID] [--mcp] [--max-queue 32] [--tab NAME]
                  [--text-backend URL [--text-backend-model NAME]] [--image-backend URL] [--audio-backend URL]
                  [--video-backend URL]

Every flag has an environment variable (PRESET, PORT, HOST, SHARE, AUTH, IMAGE_MODEL, ...), which is how a
Hugging Face Space or the Docker image sets them. CLI flags win over environment variables, which win over the
defaults. Tuning knobs (threads, batches, pacing) are environment variables only (README: Settings).
"""

import argparse
import os
from dataclasses import dataclass, field

from pipelines.base import Tuning
from pipelines.presets import PRESETS

TABS = ("image", "audio", "video", "text", "text_diffusion", "understand", "translate", "differences")
OVERRIDES = ("image_model", "audio_model", "video_model", "video_adapter", "text_model", "text_diffusion_model")
# Models served elsewhere (pipelines/remote.py; README "Scaling out"): an OpenAI-compatible LLM server, and other
# instances of this app for the diffusion tabs.
BACKENDS = ("text_backend", "text_backend_model", "image_backend", "audio_backend", "video_backend")
# Environment variables read into pipelines.base.Tuning: (variable, field, type).
TUNING = (("TORCH_THREADS", "torch_threads", int), ("IMAGE_BATCH", "image_batch", int),
          ("BATCH_PREVIEW_SHARE", "batch_preview_share", float), ("LLM_ENGINE", "llm_engine", str),
          ("LLM_SLOTS", "llm_slots", int), ("LLAMA_CPP_WEIGHTS", "llama_cpp_weights", str),
          ("REMOTE_SLOTS", "remote_slots", int), ("BACKEND_TIMEOUT_S", "backend_timeout_s", float))


@dataclass
class Settings:
    preset: str = "bundled"  # which models: bundled (offline), small (Hub, CPU), large (Hub, GPU)
    port: int = 7860  # Spaces and the Dockerfile expect 7860
    host: str = "127.0.0.1"  # 0.0.0.0 to serve other machines (Docker, Spaces)
    share: bool = False  # a temporary public *.gradio.live link
    auth: str | None = None  # "user:password" to require a login
    device: str | None = None  # cpu / cuda; default: cuda when available
    overrides: dict = field(default_factory=dict)  # {"image_model": "hub/id", ...}
    mcp: bool = False  # also serve every endpoint as an MCP tool at /gradio_api/mcp/ (needs gradio[mcp])
    max_queue: int = 32  # requests waiting at once, all endpoints together; more are refused at once ("queue is full")
    backends: dict = field(default_factory=dict)  # {"text_backend": URL, "image_backend": URL, ...}
    text_api_key: str | None = None  # the text backend's API key (TEXT_BACKEND_API_KEY; environment only)
    hf_token: str | None = None  # a private Space backend's token (HF_TOKEN; environment only)
    tab: str | None = None  # serve this tab alone (working on one tab)
    tuning: Tuning = field(default_factory=Tuning)  # how the models share the cores
    token_updates_per_s: float = 40.0  # screen updates a second of all token streams together (STREAM_UPDATES_PER_S)
    diffusion_updates_per_s: float = 12.0  # of all diffusion steps between previews (DIFFUSION_UPDATES_PER_S)
    analytics: bool = False  # Gradio's telemetry and version check (GRADIO_ANALYTICS_ENABLED=True; off: offline)
    prefill_examples: bool = True  # make the examples' cached results once idle after start (PREFILL_EXAMPLES=0: off)


def _flag(env: dict, name: str) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes")


def tuning_from(env: dict) -> Tuning:
    """The Tuning the environment asks for; a malformed number names its variable."""
    values = {}
    for variable, name, kind in TUNING:
        if env.get(variable):
            try:
                values[name] = kind(env[variable])
            except ValueError:
                raise SystemExit(f"{variable} must be {'a whole number' if kind is int else 'a number'}; "
                                 f"got {env[variable]!r}") from None
    cache = env.get("APP_CACHE") or (env.get("XDG_CACHE_HOME") and os.path.join(env["XDG_CACHE_HOME"], "diffusion-vs-llm"))
    return Tuning(**values, **({"cache_dir": cache} if cache else {}))


def parse_settings(argv: list[str] | None = None, env: dict | None = None) -> Settings:
    """CLI flags win over environment variables, which win over the defaults."""
    env = os.environ if env is None else env
    p = argparse.ArgumentParser(description="Diffusion vs LLM, live")
    p.add_argument("--preset", choices=PRESETS, default=env.get("PRESET", "bundled"))
    p.add_argument("--port", type=int, default=int(env.get("PORT", env.get("GRADIO_SERVER_PORT", 7860))))
    p.add_argument("--host", default=env.get("HOST", env.get("GRADIO_SERVER_NAME", "127.0.0.1")))
    p.add_argument("--share", action="store_true", default=_flag(env, "SHARE"))
    p.add_argument("--auth", default=env.get("AUTH"), help="USER:PASS")
    p.add_argument("--device", default=env.get("DEVICE"))
    p.add_argument("--max-queue", type=int, default=int(env.get("MAX_QUEUE", 32)),
                   help="requests that may wait at once; more are refused at once with 'queue is full' (env MAX_QUEUE)")
    p.add_argument("--mcp", action="store_true", default=_flag(env, "MCP"),
                   help="also serve the endpoints as MCP tools at /gradio_api/mcp/ (needs gradio[mcp]; env MCP)")
    p.add_argument("--tab", choices=TABS, default=env.get("TAB") or None, help="serve this tab alone (env TAB)")
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
    if args.max_queue < 1:
        p.error("--max-queue must be at least 1")
    backends = {name: getattr(args, name) for name in BACKENDS if getattr(args, name)}
    for name in ("text_backend", "image_backend", "audio_backend", "video_backend"):
        url = backends.get(name, "")
        if url and not url.startswith(("http://", "https://")) and (name == "text_backend" or url.count("/") != 1):
            p.error(f"--{name.replace('_', '-')} must be a URL (http://host:port)"
                    + ("" if name == "text_backend" else " or a Space id (user/space)") + f"; got {url!r}")
    return Settings(
        preset=args.preset, port=args.port, host=args.host, share=args.share, auth=args.auth, device=args.device,
        overrides={name: getattr(args, name) for name in OVERRIDES if getattr(args, name)}, mcp=args.mcp,
        max_queue=args.max_queue, backends=backends, text_api_key=env.get("TEXT_BACKEND_API_KEY"),
        hf_token=env.get("HF_TOKEN"), tab=args.tab, tuning=tuning_from(env),
        token_updates_per_s=float(env.get("STREAM_UPDATES_PER_S", Settings.token_updates_per_s)),
        diffusion_updates_per_s=float(env.get("DIFFUSION_UPDATES_PER_S", Settings.diffusion_updates_per_s)),
        analytics=_flag(env, "GRADIO_ANALYTICS_ENABLED"),
        prefill_examples=env.get("PREFILL_EXAMPLES", "1").lower() not in ("0", "false", "no"))
