"""Video tab: prompt -> short clip (browser-playable H.264 MP4), its frames, and the denoising steps."""

import gradio as gr

from demo.ui import (RANDOM_SEED_JS, Shown, Slider, Textbox, guarded, load_settings, missing_box, model_line,
                     progress_html, seed_input, validator, vocabulary_note)
from pipelines.base import Step

EXAMPLES = [
    ["a red circle moving right on a blue background", ""],
    ["a large yellow square moving up on a black background", ""],
    ["a green triangle moving left", ""],
    ["a white circle growing on a purple background", ""],
]


def build(stream, info: dict, to_mp4=None, unknown_words=lambda prompt: [], read_recipe=None, check=None, concurrency: int = 1) -> None:
    """The Video tab. `stream` is VideoPipeline.stream; `to_mp4(frames, fps, comment=recipe)` writes an MP4 and
    returns its path; `read_recipe(path)` reads the settings back out of one.
    `concurrency`: requests run at once (1 here; several when the model runs on a remote app)."""
    d, limits = info["defaults"], info["limits"]
    gr.Markdown(model_line(info))
    if info.get("missing"):
        gr.HTML(missing_box(info))
    with gr.Row():
        with gr.Column():
            prompt = Textbox(field="prompt", label="Prompt", lines=2, placeholder="a red circle moving right on a blue background",
                                elem_id="video-prompt")
            negative_prompt = Textbox(field="negative_prompt", label="Negative prompt", placeholder="what to steer away from (needs guidance > 1)")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", interactive=not info.get("missing"), elem_id="video-run")
                stop = gr.Button("Stop")
            with gr.Accordion("Settings", open=False):
                frames_lo, frames_hi = limits.get("num_frames", (4, 32))
                num_frames = Slider(frames_lo, frames_hi, value=d.get("num_frames", 16), step=1, label="Frames", field="num_frames")
                steps = Slider(1, limits.get("num_inference_steps", (1, 100))[1], value=d.get("num_inference_steps", 25),
                                  step=1, label="Denoising steps", field="num_inference_steps")
                guidance = Slider(0, 15, value=d.get("guidance_scale", 5.0), step=0.5, label="Guidance scale (CFG)", field="guidance_scale")
                with gr.Row():
                    seed = seed_input()
                    randomize = gr.Checkbox(value=True, label="Randomize seed")
                previews = gr.Checkbox(value=True, label="Show step previews (first / middle / last predicted frames)")
            if info.get("vocabulary"):
                gr.Markdown(vocabulary_note(info))
        with gr.Column():
            video = gr.Video(label="Clip", height=320, elem_classes=["pixelated", "enlarge"], interactive=False, autoplay=True, loop=True,
                             elem_id="video-output")
            progress = gr.HTML(progress_html(None), elem_id="video-progress")
            step_preview = gr.Image(label="Step preview: first / middle / last frame", format="png", height=120,
                                    elem_classes="pixelated", interactive=False)
            frames = gr.Gallery(label="Frames", columns=8, height=140, elem_classes="pixelated", object_fit="contain", format="png",
                                elem_id="video-frames")

    @guarded
    def video_fn(prompt, negative_prompt, num_frames, num_inference_steps, guidance_scale, seed, show_previews=True):
        """Generate a clip; yields (mp4, progress, step preview, frames)."""
        unknown = unknown_words(prompt or "")
        if unknown:
            gr.Warning(f"The bundled video model does not know: {', '.join(unknown)}. Those words are ignored.")
        screen = Shown(video=None, progress=progress_html(None), step_preview=None, frames=None)
        for item in stream(prompt, negative_prompt, int(num_frames), int(num_inference_steps), float(guidance_scale),
                           int(seed), preview=bool(show_previews)):
            if isinstance(item, Step):
                yield screen(progress=progress_html(item), step_preview=item.preview)
            else:
                last = item.steps[-1] if item.steps else None
                yield (to_mp4(item.frames, item.fps, comment=item.recipe), progress_html(last, done=True, seconds=item.seconds), gr.skip(),
                       [(f, f"frame {i + 1}") for i, f in enumerate(item.frames)])

    inputs = [prompt, negative_prompt, num_frames, steps, guidance, seed, previews]
    event = run.click(None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        video_fn, inputs, [video, progress, step_preview, frames], api_name="video", validator=validator(check, video_fn),
        concurrency_limit=concurrency, concurrency_id="video")
    stop.click(None, cancels=[event])
    if read_recipe:
        load_settings("video", read_recipe, {"prompt": prompt, "negative_prompt": negative_prompt, "num_frames": num_frames,
                                             "num_inference_steps": steps, "guidance_scale": guidance, "seed": seed},
                      randomize)
    gr.Examples(EXAMPLES, [prompt, negative_prompt])


if __name__ == "__main__":  # python -m demo.video_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("video", build)
