"""Image tab: prompt -> image, watching the whole picture emerge from noise, step by step."""

import gradio as gr

from demo.ui import (DIFFUSION_STREAMS, RANDOM_SEED_JS, Shown, Slider, Textbox, evenly, guarded, load_settings, missing_box,
                     model_line, progress_html, seed_input, validator, vocabulary_note)
from pipelines.base import Step

EXAMPLES = [
    ["a large red circle in the center on a blue background", ""],
    ["a small yellow triangle at the top on a black background", ""],
    ["a green square on the left on a white background", ""],
    ["a purple circle on the right", "on a black background"],
]


def build(stream, info: dict, unknown_words=lambda prompt: [], read_recipe=None, check=None, concurrency: int = 1) -> None:
    """The Image tab's components and events, inside the current Blocks. `stream` is ImagePipeline.stream;
    `read_recipe(path)` reads the settings back out of a PNG this tab made.
    `concurrency`: requests run at once (1 here; several when the model runs on a remote app)."""
    d, limits = info["defaults"], info["limits"]
    w_lo, w_hi, w_step = limits.get("width", (256, 1024, 64))
    gr.Markdown(model_line(info))
    if info.get("missing"):
        gr.HTML(missing_box(info))
    with gr.Row():
        with gr.Column():
            prompt = Textbox(field="prompt", label="Prompt", lines=2, placeholder="a small red circle on the left on a blue background",
                                elem_id="image-prompt")
            negative_prompt = Textbox(field="negative_prompt", label="Negative prompt", placeholder="what to steer away from (needs guidance > 1)")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", interactive=not info.get("missing"), elem_id="image-run")
                stop = gr.Button("Stop")
            with gr.Accordion("Settings", open=False):
                steps = Slider(1, limits.get("num_inference_steps", (1, 100))[1], value=d.get("num_inference_steps", 25),
                                  step=1, label="Denoising steps", field="num_inference_steps")
                guidance = Slider(0, 15, value=d.get("guidance_scale", 5.0), step=0.5, label="Guidance scale (CFG)", field="guidance_scale")
                with gr.Row():
                    width = Slider(w_lo, w_hi, value=d.get("width", 512), step=w_step, label="Width", field="width")
                    height = Slider(w_lo, w_hi, value=d.get("height", 512), step=w_step, label="Height", field="height")
                with gr.Row():
                    seed = seed_input()
                    randomize = gr.Checkbox(value=True, label="Randomize seed")
                previews = gr.Checkbox(value=True, label="Show step previews (the predicted clean image at each step; every few steps when the model is busy)")
            if info.get("vocabulary"):
                gr.Markdown(vocabulary_note(info))
        with gr.Column():
            image = gr.Image(label="Image", format="png", height=320, elem_classes=["pixelated", "enlarge"], interactive=False,
                             elem_id="image-output")
            progress = gr.HTML(progress_html(None), elem_id="image-progress")
            gallery = gr.Gallery(label="Denoising steps: the predicted clean image at each step", columns=8, height=140,
                                 elem_classes="pixelated", object_fit="contain")

    @guarded
    def image_fn(prompt, negative_prompt, num_inference_steps, guidance_scale, seed, width, height, show_previews=True):
        """Generate an image; yields (image, progress, step gallery) as it denoises."""
        unknown = unknown_words(prompt or "")
        if unknown:
            gr.Warning(f"The bundled image model does not know: {', '.join(unknown)}. Those words are ignored.")
        shown: list[Step] = []
        screen = Shown(image=None, progress=progress_html(None), gallery=None)
        for item in DIFFUSION_STREAMS(stream(prompt, negative_prompt, int(num_inference_steps), float(guidance_scale),
                                             int(seed), int(width), int(height), preview=bool(show_previews))):
            if isinstance(item, Step):
                if item.preview is not None:
                    shown.append(item)
                # A step without a preview (a busy batch previews every few steps) keeps the last one on screen.
                yield screen(image=item.preview, progress=progress_html(item))
            else:
                last = item.steps[-1] if item.steps else None
                gallery_items = [(s.preview, f"step {s.index}") for s in evenly(shown, 8)]
                yield item.image, progress_html(last, done=True, seconds=item.seconds), gallery_items

    # Run and Enter in the prompt box start the same chain: pick a seed in the browser, then generate.
    event = gr.on([run.click, prompt.submit], None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        image_fn, [prompt, negative_prompt, steps, guidance, seed, width, height, previews], [image, progress, gallery],
        api_name="image", validator=validator(check, image_fn),
        concurrency_limit=concurrency, concurrency_id="image")
    stop.click(None, cancels=[event])
    if read_recipe:
        load_settings("image", read_recipe, {"prompt": prompt, "negative_prompt": negative_prompt, "num_inference_steps": steps,
                                             "guidance_scale": guidance, "seed": seed, "width": width, "height": height},
                      randomize)
    gr.Examples(EXAMPLES, [prompt, negative_prompt])


if __name__ == "__main__":  # python -m demo.image_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("image", build)
