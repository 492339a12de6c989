"""Builds the tabbed Blocks from the callables app.py hands over. Never imports torch or pipelines/."""

import contextvars
import functools
import inspect

import gradio as gr

from demo import differences_tab, diffusion_tab, text_diffusion_tab, text_tab, translate_tab, understand_tab
from demo.serving import ClientAddress, InputCount
from demo.widgets import CSS, EXAMPLE_SETS, Pacer

HEADER = """# Diffusion vs LLM, live
Two kinds of generative model, one interface. **Diffusion models** (Image, Audio, Video) start from noise and refine
the *whole* output a little at every step. **LLMs** (Text, Understand, Translate) write *one token per step*, each
step a probability distribution over the next token. **Text diffusion** makes text the diffusion way: the whole
answer starts masked and is refined in parallel, several words per step, in any order. Every tab streams those steps
as they happen."""
# A diffusion stream's first screen update comes no sooner than this after the request: under 0.1 s a person sees a
# result as instant (Nielsen's limit), so a run that short shows its result alone, and a longer one starts showing
# its steps as soon as watching them means anything. A token stream shows its first token at once: how soon an LLM
# starts writing is part of what the Key differences tab is about.
FIRST_UPDATE_S = 0.1
TITLES = {"image": "Image", "audio": "Audio", "video": "Video", "text": "Text", "text_diffusion": "Text diffusion",
          "understand": "Understand", "translate": "Translate", "differences": "Key differences"}


def build_demo(backend: dict, preset: str, max_queue: int | None, *, token_updates_per_s: float,
               diffusion_updates_per_s: float, analytics: bool = False,
               step_filter: contextvars.ContextVar | None = None) -> gr.Blocks:
    """The app's Blocks: one tab per entry of `backend` ({tab: the keyword arguments of its `build`}, see app.py), in
    TITLES' order. The queue takes one request at a time per event (each model serves one at a time anyway), at
    most `max_queue` waiting (None: no limit); a tab that batches sets its own concurrency.

    Screen updates are paced by what a person can see (the rates are the app's settings, settings.py): all token
    streams together show at most `token_updates_per_s` steps a second, all diffusion streams (image, audio, video,
    text diffusion) `diffusion_updates_per_s`, a preview held back shown at the next update, counted from the request;
    a diffusion stream's first update comes no sooner than FIRST_UPDATE_S after the request (a run over sooner shows
    its result alone). `step_filter` (pipelines/base.py's STEP_FILTER): where the streams look for their pacing, to
    keep steps back in the worker that makes them rather than in the thread that shows them."""
    tokens = Pacer(token_updates_per_s, upstream=step_filter)
    steps = Pacer(diffusion_updates_per_s, keeps=lambda step: step.preview is not None, upstream=step_filter,
                  first_after_s=FIRST_UPDATE_S)
    # Gradio's cache of outputs: files older than an hour go, checked every ten minutes.
    example_sets = []
    collecting = EXAMPLE_SETS.set(example_sets)
    with gr.Blocks(title="Diffusion vs LLM, live", delete_cache=(600, 3600), analytics_enabled=analytics) as demo:
        gr.Markdown(HEADER + f"\n\nPreset: **{preset}**")
        with gr.Row():  # the button under the header: beside it, a phone's screen squeezed the header to a column
            # On a hosted Space: a link that reopens the app with this tab's inputs and results (README: Sharing).
            gr.DeepLinkButton(value="Share this result", size="sm", scale=0, min_width=160)
        with gr.Tabs() as tabs:
            builders = {**{task: functools.partial(diffusion_tab.build, task) for task in diffusion_tab.TABS},
                        "text": text_tab.build, "text_diffusion": text_diffusion_tab.build,
                        "understand": understand_tab.build, "translate": translate_tab.build,
                        "differences": functools.partial(differences_tab.build, tabs)}
            pacers = {"image": steps, "audio": steps, "video": steps, "text_diffusion": steps, "text": tokens,
                      "translate": tokens}
            for tab in (t for t in TITLES if t in backend):
                with gr.Tab(TITLES[tab], id=tab):
                    builders[tab](**backend[tab], **({"pacer": pacers[tab]} if tab in pacers else {}))
    EXAMPLE_SETS.reset(collecting)
    demo.example_sets = example_sets  # every tab's cached examples, for app.prefill_examples
    return demo.queue(default_concurrency_limit=1, max_size=max_queue)


def parameter_names(demo: gr.Blocks):
    """For demo/serving.InputCount: the parameter names of a public named endpoint, by api_name or fn_index."""
    names = {}
    for index, fn in demo.fns.items():
        if fn.api_name and fn.api_visibility == "public" and fn.fn is not None:
            params = list(inspect.signature(fn.fn).parameters)
            names[fn.api_name] = names[index] = names[str(index)] = params
    return lambda key: names.get(key)


def launch_kwargs(demo: gr.Blocks | None = None) -> dict:
    """What every launch of the app passes: the style, a cap on uploads (the only file input is "Load settings",
    which takes one PNG, WAV or MP4 this app made: a few MB at most) and, given the demo, our middleware."""
    kwargs = {"css": CSS, "theme": gr.themes.Soft(), "max_file_size": "10mb"}
    if demo is not None:  # our own middleware in front of Gradio's routes (demo/serving.py)
        from starlette.middleware import Middleware

        middleware = [Middleware(ClientAddress), Middleware(InputCount, parameters=parameter_names(demo))]
        kwargs["app_kwargs"] = {"middleware": middleware}
    return kwargs
