"""Text diffusion tab: prompt -> text, every position refined in parallel; watch the canvas fill in, anywhere."""

import gradio as gr

from demo.widgets import (
    RANDOM_SEED_JS,
    Shown,
    StepProgress,
    endpoint,
    is_step,
    missing_box,
    model_line,
    progress,
    seed_input,
    validator,
    vocabulary_note,
)

EXAMPLES = [
    ["a small red circle on the left on a blue background"],
    ["a large yellow triangle at the top on a black background"],
    ["a green square in the center"],
    ["a purple circle on an orange background"],
]
LOOK = ("**What to look at:** the canvas starts fully masked (▒). At every step the model predicts *every* position at "
        "once and commits the few it is surest of (highlighted), wherever they are: often the end of the text first "
        "(· is end-of-text: the model settles the length early) and a colour word before the words between them. "
        "An LLM (Text tab) writes one token per step, left to right. "
        "**The price of parallel:** tokens committed in the same step are chosen independently, so two neighbours can "
        "disagree (\"on a red red.\"). With fewer steps more tokens go at once and that happens more often; one token "
        "per step (as many steps as tokens) writes cleanly but takes as many passes as an LLM.")
NEW = "committed at this step"


def canvas_value(step) -> list[tuple[str, str | None]]:
    """The canvas of a step for gr.HighlightedText: one entry per position, this step's commits labelled.

    A piece's leading space is its own unlabelled entry, so a highlight covers the word alone.
    """
    if step is None:
        return []
    new = {c["position"] for c in step.info["committed"]}
    value = []
    for position, piece in enumerate(step.info["canvas"]):
        word = piece.lstrip(" ")
        if len(word) < len(piece):
            value.append((piece[: len(piece) - len(word)], None))
        if word:
            value.append((word, NEW if position in new else None))
    return value


def build(stream, info: dict, records=None, check=None, pacer=None) -> None:
    """The Text diffusion tab. `stream` is TextDiffusionPipeline.stream; `records(TextOutput)` the API's step JSON;
    `check(prompt, gen_length, num_inference_steps, seed)` its input check; `pacer` paces the screen updates."""
    pacer = pacer or (lambda items: items)
    d, limits = info["defaults"], info["limits"]
    g_lo, g_hi, g_step = limits["gen_length"]
    gr.Markdown(model_line(info))
    if info.get("missing"):
        gr.HTML(missing_box(info))
    gr.Markdown(LOOK)
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", lines=2, value=EXAMPLES[0][0], elem_id="textdiff-prompt")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", interactive=not info.get("missing"), elem_id="textdiff-run")
                stop = gr.Button("Stop")
            gen_length = gr.Slider(g_lo, g_hi, value=d["gen_length"], step=g_step, label="Length (tokens)")
            steps = gr.Slider(1, g_hi, value=d["num_inference_steps"], step=1, label="Refinement steps")
            with gr.Row():
                seed = seed_input()
                randomize = gr.Checkbox(value=True, label="Randomize seed")
            if info.get("vocabulary"):
                gr.Markdown(vocabulary_note(info))
        with gr.Column():
            text = gr.Textbox(label="Text", lines=3, interactive=False, elem_id="textdiff-output")
            canvas = gr.HighlightedText(label="Canvas (▒ still masked)", combine_adjacent=False, show_legend=True,
                                        color_map={NEW: "#f59e0b"}, elem_id="textdiff-canvas")
            progress_bar = StepProgress(elem_id="textdiff-progress")
            replay = gr.Slider(1, 2, value=1, step=1, label="Replay step (after a run)", interactive=False,
                               elem_id="textdiff-replay")
            with gr.Accordion("Steps as JSON (what /text_diffusion returns)", open=False):
                steps_json = gr.JSON(label="steps")
    shown = gr.State([])  # every step of the last run, for the replay slider

    @endpoint("text_diffusion")
    def text_diffusion_fn(prompt, gen_length, num_inference_steps, seed):
        """Generate text by diffusion; yields (text, canvas, progress, steps JSON, replay slider, steps) as it refines."""
        # The replay slider is skipped while a run streams (a value sent to it would fire its .change); the steps it
        # replays are emptied at once, so dragging it mid-run shows nothing of the last run.
        screen = Shown(text="", canvas=None, progress=None, steps_json=None, replay=gr.skip(), shown=[])
        for item in pacer(stream(prompt, int(gen_length), int(num_inference_steps), int(seed))):
            if is_step(item):
                yield screen(canvas=canvas_value(item), progress=progress(item))
            else:
                last = item.steps[-1] if item.steps else None
                n = max(len(item.steps), 1)
                yield (item.text, canvas_value(last), progress(last, done=True, seconds=item.seconds),
                       records(item) if records else None,
                       gr.Slider(1, max(n, 2), value=n, step=1, interactive=n > 1), item.steps)

    def replay_fn(k, steps):
        """The canvas and progress at step k of the last run."""
        if not steps:
            return gr.skip(), gr.skip()
        step = steps[min(max(int(k), 1), len(steps)) - 1]
        return canvas_value(step), progress(step, done=step is steps[-1])  # the run's end stays "done"

    event = gr.on([run.click, prompt.submit], None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        text_diffusion_fn, [prompt, gen_length, steps, seed], [text, canvas, progress_bar, steps_json, replay, shown],
        api_name="text_diffusion", api_description="Text by diffusion: the whole answer starts masked and is refined "
        "in parallel; streams the canvas at every step, then the step records.",
        validator=validator(check, text_diffusion_fn), preprocess=False)
    stop.click(None, cancels=[event])
    replay.change(replay_fn, [replay, shown], [canvas, progress_bar], api_visibility="private", queue=False)
    gr.Examples(EXAMPLES, [prompt])

