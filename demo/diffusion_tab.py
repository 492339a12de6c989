"""The Image, Audio and Video tabs: one builder. Prompt -> output, watching it emerge from noise, step by step.

The three differ only in the settings their model takes (the model's spec gives each one's default and range)
and in what they show; everything else (Enter to generate, Stop, pacing, "Load settings", examples, the API's
data) is the same code.
"""

import inspect

import gradio as gr

from demo.widgets import (
    RANDOM_SEED_JS,
    Shown,
    StepProgress,
    cached_examples,
    check_flag,
    endpoint,
    evenly,
    is_step,
    load_settings,
    missing_box,
    model_line,
    preview_file,
    progress,
    seed_input,
    validator,
    vocabulary_note,
)

# Per tab: its settings after the prompt and negative prompt, in the API's order (seed among them), and examples
# within the bundled models' vocabularies (Hub models understand them too).
TABS = {
    "image": {
        "settings": ("num_inference_steps", "guidance_scale", "seed", "width", "height"),
        "examples": [["a large red circle in the center on a blue background", ""],
                     ["a small yellow triangle at the top on a black background", ""],
                     ["a green square on the left on a white background", ""],
                     ["a purple circle on the right", "on a black background"]],
        "previews": "Show step previews (the predicted clean image at each step; every few steps when the model is busy)",
    },
    "audio": {
        "settings": ("duration_s", "num_inference_steps", "guidance_scale", "seed"),
        "examples": [["a voice saying seven", ""], ["a rising scale", ""], ["a falling scale with a slow drum beat", ""],
                     ["a rising siren", ""], ["a fast drum beat", ""], ["a low tone and rain", ""],
                     ["a major chord with a slow drum beat", ""], ["birdsong", ""], ["a bell", "white noise"]],
        "previews": "Show step previews (the predicted spectrogram at each step)",
    },
    "video": {
        "settings": ("num_frames", "num_inference_steps", "guidance_scale", "seed"),
        "examples": [["a red circle moving right on a blue background", ""],
                     ["a large yellow square moving up on a black background", ""],
                     ["a green triangle moving left", ""], ["a white circle growing on a purple background", ""]],
        "previews": "Show step previews (first / middle / last predicted frames)",
    },
}
LABELS = {"num_inference_steps": "Denoising steps", "guidance_scale": "Guidance scale (CFG)", "width": "Width",
          "height": "Height", "duration_s": "Duration (seconds)", "num_frames": "Frames"}
STEPS = {"guidance_scale": 0.5, "duration_s": 0.5}  # slider increments; the rest step by 1 or their multiple


def _setting(name: str, info: dict) -> gr.Slider:
    low, high, *multiple = info["limits"][name]
    if name == "guidance_scale":
        high = min(high, 15)  # the useful part of the range; the API takes up to the limit
    return gr.Slider(low, high, value=info["defaults"][name], step=multiple[0] if multiple else STEPS.get(name, 1),
                     label=LABELS[name])


def _outputs(task: str) -> dict:
    """The tab's output components, in the API's order: the artefact, the progress, then what shows the steps."""
    if task == "image":
        return {"image": gr.Image(label="Image", format="png", height=320, elem_classes=["pixelated", "enlarge"],
                                  interactive=False, elem_id="image-output"),
                "progress": StepProgress(elem_id="image-progress"),
                "gallery": gr.Gallery(label="Denoising steps: the predicted clean image at each step", columns=8,
                                      height=140, elem_classes="pixelated", object_fit="contain")}
    if task == "audio":  # gr.Audio draws the waveform and offers the download (the WAV carries the recipe)
        return {"audio": gr.Audio(label="Clip", type="filepath", interactive=False, buttons=["download"],
                                  elem_id="audio-output"),
                "progress": StepProgress(elem_id="audio-progress"),
                "spectrogram": gr.Image(label="Spectrogram (live: the predicted clean spectrogram)", format="png",
                                        interactive=False, height=200),
                "gallery": gr.Gallery(label="Denoising steps", columns=6, height=120, object_fit="contain"),
                # A vocoder turns the spectrogram the model made into a waveform: the clip above through the learned
                # one, this one through Griffin-Lim, which guesses the phase the spectrogram leaves out.
                "griffin_lim": gr.Audio(label="The same spectrogram through Griffin-Lim",
                                        type="filepath", interactive=False, elem_id="audio-griffin-lim")}
    return {"video": gr.Video(label="Clip", height=320, elem_classes=["pixelated", "enlarge"], interactive=False,
                              autoplay=True, loop=True, elem_id="video-output"),
            "progress": StepProgress(elem_id="video-progress"),
            "step_preview": gr.Image(label="Step preview: first / middle / last frame", format="png", height=120,
                                     elem_classes="pixelated", interactive=False),
            "frames": gr.Gallery(label="Frames", columns=8, height=140, elem_classes="pixelated", object_fit="contain",
                                 format="png", elem_id="video-frames")}


VOCODER_NOTE = ("A **vocoder** turns the spectrogram the model made (each band's loudness over time, no phase) into "
                "sound: the clip above through the one trained for this model, this one through Griffin-Lim, which "
                "guesses the phase. Listen for the notes: the learned one keeps each pitch clean.")

# Where each tab shows a step's preview while it runs, and which gallery (if any) keeps a few of them at the end.
LIVE = {"image": ("image", "gallery", 8), "audio": ("spectrogram", "gallery", 6), "video": ("step_preview", None, 0)}


def build(task: str, stream, info: dict, finish, check=None, read_recipe=None, unknown_words=lambda prompt: [],
          pacer=None, concurrency: int = 1) -> None:
    """One diffusion tab's components and events, inside the current Blocks.

    `stream(prompt=..., ..., preview=bool)` is the pipeline's stream; `finish(output)` turns its final output into
    the tab's artefact outputs ({"image": PIL} / {"audio": WAV path, "spectrogram": PIL} / {"video": MP4 path,
    "frames": [...]}); `check(*values)` the pipeline's input check, in the API's order; `read_recipe(path)` reads
    the settings back out of a file this tab made; `pacer` paces the screen updates of concurrent runs;
    `concurrency`: requests run at once (a batch here, several on a remote app)."""
    layout = TABS[task]
    names = ("prompt", "negative_prompt", *layout["settings"])
    gr.Markdown(model_line(info))
    if info.get("missing"):
        gr.HTML(missing_box(info))
    with gr.Row():
        with gr.Column():
            fields = {"prompt": gr.Textbox(label="Prompt", lines=2, value=layout["examples"][0][0],
                                           elem_id=f"{task}-prompt"),
                      "negative_prompt": gr.Textbox(label="Negative prompt",
                                                    placeholder="what to steer away from (needs guidance > 1)")}
            with gr.Row():
                run = gr.Button("Generate", variant="primary", interactive=not info.get("missing"), elem_id=f"{task}-run")
                stop = gr.Button("Stop")
            with gr.Accordion("Settings", open=False):
                for name in layout["settings"]:
                    if name == "seed":
                        with gr.Row():
                            fields["seed"] = seed_input()
                            randomize = gr.Checkbox(value=True, label="Randomize seed")
                    else:
                        fields[name] = _setting(name, info)
                previews = gr.Checkbox(value=True, label=layout["previews"])
            if info.get("vocabulary"):
                gr.Markdown(vocabulary_note(info))
        with gr.Column():
            outputs = _outputs(task)
            if task == "audio":
                gr.Markdown(VOCODER_NOTE)
    live, gallery, keep = LIVE[task]
    cache = outputs[live].GRADIO_CACHE  # where each step's preview is written once (preview_file)

    def generate(*values):
        *settings, show_previews = values
        request = dict(zip(names, settings))
        unknown = unknown_words(request["prompt"])
        if unknown:
            gr.Warning(f"The bundled {task} model does not know: {', '.join(unknown)}. Those words are ignored.")
        request = {k: int(v) if k in ("seed", "num_inference_steps", "num_frames", "width", "height") else v
                   for k, v in request.items()}
        shown = []  # (the preview's file, the step's number) of each step shown with a preview, for the gallery
        screen = Shown(**{name: None for name in outputs})
        # no more previews decoded than the screen shows (the pacer's rate; the first and last step always)
        steps = stream(**request, preview=bool(show_previews), previews_per_s=getattr(pacer, "per_second", None))
        for item in pacer(steps) if pacer else steps:
            if item is None:  # a heartbeat: nothing new (Stop can end the run here)
                yield screen()
            elif is_step(item):  # a Step; a step without a preview keeps the last one on screen (None: unchanged)
                file = None
                if item.preview is not None:
                    file = preview_file(item.preview, cache)
                    shown.append((file, f"step {item.index}"))
                yield screen(progress=progress(item), **{live: file})
            else:
                last = item.steps[-1] if item.steps else None
                final = {live: gr.skip(), **({gallery: evenly(shown, keep)} if gallery else {}),
                    **finish(item), "progress": progress(last, done=True, seconds=item.seconds)}
                yield tuple(final.get(name, gr.skip()) for name in outputs)

    generate.__doc__ = f"Generate {'an' if task == 'image' else 'a'} {task}; streams (the {task}, its progress, ...)."
    generate.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
        + [inspect.Parameter("show_previews", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=True)])
    generate = endpoint(task)(generate)

    def check_all(*values):
        if check is not None:
            check(*values[:len(names)])
        check_flag("show_previews", values[len(names)] if len(values) > len(names) else True)

    # Run and Enter in the prompt box start the same chain: pick a seed in the browser, then generate. The events
    # run with preprocess=False: the validator sees what the client sent and names what is wrong.
    event = gr.on([run.click, fields["prompt"].submit], None, [fields["seed"], randomize], fields["seed"],
                  js=RANDOM_SEED_JS).then(
        generate, [*(fields[n] for n in names), previews], list(outputs.values()), api_name=task,
        api_description=f"{task.title()} diffusion: prompt -> {task}, streamed one denoising step at a time.",
        validator=validator(check_all, generate), preprocess=False, concurrency_limit=concurrency,
        concurrency_id=task)
    stop.click(None, cancels=[event])
    if read_recipe:
        load_settings(task, read_recipe, fields, randomize)
    cached_examples(layout["examples"], [*(fields[n] for n in names), previews], generate, list(outputs.values()),
                    labels=[prompt + (f"  (not: {negative})" if negative else "") for prompt, negative in layout["examples"]])
