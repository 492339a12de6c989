"""Builds the tabbed Blocks from the callables app.py hands over. Never imports torch."""

import contextlib
import os

import gradio as gr
from gradio.routes import App

from demo import (audio_tab, differences_tab, image_tab, text_diffusion_tab, text_tab, translate_tab,
                  understand_tab, video_tab)
from demo.ui import CSS

HEADER = """# Diffusion vs LLM, live
Two kinds of generative model, one interface. **Diffusion models** (Image, Audio, Video) start from noise and refine
the *whole* output a little at every step. **LLMs** (Text, Understand, Translate) write *one token per step*, each
step a probability distribution over the next token. **Text diffusion** makes text the diffusion way: the whole
answer starts masked and is refined in parallel, several words per step, in any order. Every tab streams those steps
as they happen."""


def telemetry(env: dict | None = None) -> bool:
    """Whether Gradio may send its usage telemetry and check for a newer version, two calls to Hugging Face from
    threads at start-up: only with GRADIO_ANALYTICS_ENABLED=True (Gradio's own default is on). This app runs
    offline by default, where those calls cannot succeed. (They do not slow the start measurably: the UI answered
    in a median 5.18 s with them and 5.19 s without, four runs each, though py-spy saw their TLS set-up take
    about 5 % of the start's samples.)"""
    env = os.environ if env is None else env
    return env.get("GRADIO_ANALYTICS_ENABLED", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def server_built_at_launch():
    """Build no FastAPI app until `launch()`. Gradio 6.31 builds one (every route and its pydantic models: 0.2-0.3 s
    each here) in `Blocks.__init__`, in `__exit__` and in `queue()`, and `launch()` builds the one it serves,
    replacing them; the three before it were about a sixth of the app's start. Meanwhile `blocks.app` is None,
    which nothing reads before `launch()`; a `launch()` or `queue()` after the block builds as usual."""
    build = App.__dict__["create_app"]
    App.create_app = staticmethod(lambda *args, **kwargs: None)
    try:
        yield
    finally:
        App.create_app = build


def build_demo(backend: dict, preset: str = "bundled", max_queue: int | None = None) -> gr.Blocks:
    """`backend` holds, per tab, the keyword arguments of that tab module's `build` (see app.py). The queue takes one
    request at a time per event (each model serves one request at a time anyway), at most `max_queue` waiting
    (None: no limit); a tab that batches sets its own concurrency."""
    with server_built_at_launch():
        demo = _blocks(backend, preset)
        return demo.queue(default_concurrency_limit=1, max_size=max_queue)


def _blocks(backend: dict, preset: str) -> gr.Blocks:
    # Gradio's cache of outputs: files older than an hour go, checked every ten minutes.
    with gr.Blocks(title="Diffusion vs LLM, live", delete_cache=(600, 3600), analytics_enabled=telemetry()) as demo:
        with gr.Row():
            gr.Markdown(HEADER + f"\n\nPreset: **{preset}**")
            # On a hosted Space: a link that reopens the app with this tab's inputs and results (README: Sharing).
            gr.DeepLinkButton(value="Share this result", size="sm", scale=0, min_width=160)
        with gr.Tabs() as tabs:
            with gr.Tab("Image", id="image"):
                image_tab.build(**backend["image"])
            with gr.Tab("Audio", id="audio"):
                audio_tab.build(**backend["audio"])
            with gr.Tab("Video", id="video"):
                video_tab.build(**backend["video"])
            with gr.Tab("Text", id="text"):
                text_tab.build(**backend["text"])
            with gr.Tab("Text diffusion", id="text_diffusion"):
                text_diffusion_tab.build(**backend["text_diffusion"])
            with gr.Tab("Understand", id="understand"):
                understand_tab.build(**backend["understand"])
            with gr.Tab("Translate", id="translate"):
                translate_tab.build(**backend["translate"])
            with gr.Tab("Key differences", id="differences"):
                differences_tab.build(tabs, **backend.get("differences", {}))
    return demo


def launch_kwargs() -> dict:
    """What every launch of the app passes: the style, and a cap on uploads (the only file input is "Load settings",
    which takes one PNG, WAV or MP4 this app made: a few MB at most)."""
    return {"css": CSS, "theme": gr.themes.Soft(), "max_file_size": "10mb"}
