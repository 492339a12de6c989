"""Audio tab: prompt -> sound clip, watching its spectrogram emerge from noise, step by step."""

import gradio as gr

from demo.ui import (RANDOM_SEED_JS, Shown, Slider, Textbox, evenly, guarded, load_settings, missing_box, model_line,
                     progress_html, seed_input, validator, vocabulary_note)
from pipelines.base import Step, output_path

EXAMPLES = [  # all within the bundled model's vocabulary; Hub models understand them too
    ["a voice saying seven", ""],
    ["a rising scale", ""],
    ["a falling scale with a slow drum beat", ""],
    ["a rising siren", ""],
    ["a fast drum beat", ""],
    ["a low tone and rain", ""],
    ["a major chord with a slow drum beat", ""],
    ["birdsong", ""],
    ["a bell", "white noise"],
]


def build(stream, info: dict, render=None, unknown_words=lambda prompt: [], read_recipe=None, check=None, concurrency: int = 1) -> None:
    """The Audio tab. `stream` is AudioPipeline.stream; `render(audio, sample_rate, recipe)` returns
    (wav bytes carrying the recipe, spectrogram image) for a finished clip; `read_recipe(path)`
    reads the settings back out of a WAV.
    `concurrency`: requests run at once (1 here; several when the model runs on a remote app)."""
    d, limits = info["defaults"], info["limits"]
    lo, hi = limits.get("duration_s", (1.0, 10.0))
    gr.Markdown(model_line(info))
    if info.get("missing"):
        gr.HTML(missing_box(info))
    with gr.Row():
        with gr.Column():
            prompt = Textbox(field="prompt", label="Prompt", lines=2, placeholder="a rising siren")
            negative_prompt = Textbox(field="negative_prompt", label="Negative prompt", placeholder="what to steer away from (needs guidance > 1)")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", interactive=not info.get("missing"))
                stop = gr.Button("Stop")
            with gr.Accordion("Settings", open=False):
                duration = Slider(lo, hi, value=d.get("duration_s", 5.0), step=0.5, label="Duration (seconds)", field="duration_s")
                steps = Slider(1, limits.get("num_inference_steps", (1, 200))[1], value=d.get("num_inference_steps", 25),
                                  step=1, label="Denoising steps", field="num_inference_steps")
                guidance = Slider(0, 15, value=d.get("guidance_scale", 3.0), step=0.5, label="Guidance scale (CFG)", field="guidance_scale")
                with gr.Row():
                    seed = seed_input()
                    randomize = gr.Checkbox(value=True, label="Randomize seed")
                previews = gr.Checkbox(value=True, label="Show step previews (the predicted spectrogram at each step)")
            if info.get("vocabulary"):
                gr.Markdown(vocabulary_note(info))
        with gr.Column():
            # gr.Audio draws the waveform and offers the download (the WAV carries the recipe)
            audio = gr.Audio(label="Clip", type="filepath", interactive=False, buttons=["download"], elem_id="audio-output")
            progress = gr.HTML(progress_html(None), elem_id="audio-progress")
            spectrogram = gr.Image(label="Spectrogram (live: the predicted clean spectrogram)", format="png", interactive=False, height=200)
            gallery = gr.Gallery(label="Denoising steps", columns=6, height=120, object_fit="contain")

    @guarded
    def audio_fn(prompt, negative_prompt, duration_s, num_inference_steps, guidance_scale, seed, show_previews=True):
        """Generate a clip; yields (audio file, progress, spectrogram, step gallery)."""
        unknown = unknown_words(prompt or "")
        if unknown:
            gr.Warning(f"The bundled audio model does not know: {', '.join(unknown)}. Those words are ignored.")
        shown: list[Step] = []
        screen = Shown(audio=None, progress=progress_html(None), spectrogram=None, gallery=None)
        for item in stream(prompt, negative_prompt, float(duration_s), int(num_inference_steps), float(guidance_scale),
                           int(seed), preview=bool(show_previews)):
            if isinstance(item, Step):
                if item.preview is not None:
                    shown.append(item)
                yield screen(progress=progress_html(item), spectrogram=item.preview)
            else:
                wav, spec_img = render(item.audio, item.sample_rate, item.recipe)
                path = output_path(".wav")  # old clips there are deleted as new ones come
                with open(path, "wb") as f:
                    f.write(wav)
                last = item.steps[-1] if item.steps else None
                yield (path, progress_html(last, done=True, seconds=item.seconds), spec_img,
                       [(s.preview, f"step {s.index}") for s in evenly(shown, 6)])

    inputs = [prompt, negative_prompt, duration, steps, guidance, seed, previews]
    outputs = [audio, progress, spectrogram, gallery]
    event = run.click(None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(audio_fn, inputs, outputs, api_name="audio", validator=validator(check, audio_fn),
        concurrency_limit=concurrency, concurrency_id="audio")
    stop.click(None, cancels=[event])
    if read_recipe:
        load_settings("audio", read_recipe, {"prompt": prompt, "negative_prompt": negative_prompt, "duration_s": duration,
                                             "num_inference_steps": steps, "guidance_scale": guidance, "seed": seed},
                      randomize)
    gr.Examples(EXAMPLES, [prompt, negative_prompt])


if __name__ == "__main__":  # python -m demo.audio_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("audio", build)
