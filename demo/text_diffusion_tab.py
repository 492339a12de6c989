"""Text diffusion tab: prompt -> text, every position refined in parallel; watch the canvas fill in, anywhere.

The knobs a learner asks about: how parallel (block length: one token per step, left to right, as an LLM, up to the
whole canvas at once), confidence-driven steps (threshold), revision (editing threshold: take back a committed token),
and infilling (a template with gaps, filled from both sides). Each run shows what it cost and its decoding order.
"""

import gradio as gr

from demo import export
from demo.widgets import (
    RANDOM_SEED_JS,
    RunStats,
    Shown,
    StepProgress,
    cached_examples,
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
TEMPLATES = [
    ["a small red circle on the left on a blue background",
     "The picture shows a small _ circle on the _ , set on a _ background ."],
    ["a large yellow triangle at the top on a black background", "A _ yellow _ sits at the _ of a black background ."],
]
LOOK = ("**What to look at:** the canvas starts fully masked (▒). At every step the model predicts *every* position at "
        "once and commits the few it is surest of (highlighted), wherever they are: often the end of the text first "
        "(· is end-of-text: the model settles the length early) and a colour word before the words between them. "
        "An LLM (Text tab) writes one token per step, left to right. "
        "**The price of parallel:** tokens committed in the same step are chosen independently, so two neighbours can "
        "disagree (\"on a red red.\"). With fewer steps more tokens go at once and that happens more often; one token "
        "per step (as many steps as tokens) writes cleanly but takes as many passes as an LLM.")
KNOBS = ("**The dial.** *Block length* 1 with as many steps as tokens writes left to right, one token per step, as an "
         "LLM does; the whole length refines everything at once. *Threshold* (0 = off) also commits every token the "
         "model is surer of than that, so easy text needs fewer steps. *Editing* threshold (0 = off) lets a step "
         "replace a committed token the model is now confident is wrong (red): an LLM never takes a token back.")
NEW, REVISED = "committed at this step", "revised at this step"


def canvas_value(step) -> list[tuple[str, str | None]]:
    """The canvas of a step for gr.HighlightedText: one entry per position, this step's commits and revisions labelled.

    A piece's leading space is its own unlabelled entry, so a highlight covers the word alone.
    """
    if step is None:
        return []
    new = {c["position"] for c in step.info["committed"]}
    revised = {r["position"] for r in step.info.get("revised", [])}
    value = []
    for position, piece in enumerate(step.info["canvas"]):
        word = piece.lstrip(" ")
        if len(word) < len(piece):
            value.append((piece[: len(piece) - len(word)], None))
        if word:
            value.append((word, REVISED if position in revised else NEW if position in new else None))
    return value


def step_stats(step) -> dict:
    """The run so far, at a step: what RunStats shows live."""
    keys = ("forward_passes", "tokens_committed", "tokens_per_pass", "tokens_per_second", "block")
    return {"steps": step.index, **{k: step.info[k] for k in keys if k in step.info}}


def run_stats(output) -> dict:
    run = getattr(output, "run", {})
    keys = ("steps", "forward_passes", "tokens_committed", "tokens_per_pass", "tokens_per_second", "settled_at",
            "revisions")
    return {k: run[k] for k in keys if k in run}


def committed_frame(output):
    """Tokens committed (and revised) at each step, for a bar plot (pandas on first use)."""
    import pandas as pd

    rows = [{"step": s.index, "tokens": len(s.info["committed"]), "kind": "committed"} for s in output.steps]
    rows += [{"step": s.index, "tokens": len(s.info.get("revised", [])), "kind": "revised"} for s in output.steps
             if s.info.get("revised")]
    return pd.DataFrame(rows, columns=["step", "tokens", "kind"])


def order_frame(output):
    """Decoding order: for each position, the step that committed it and the model's confidence then (a heatmap of
    steps x positions, one cell per position), and each revision."""
    import pandas as pd

    run = getattr(output, "run", {})
    rows = [{"position": p + 1, "step": at, "confidence": prob, "event": "committed"}
            for p, (at, prob) in enumerate(zip(run.get("committed_at", []), run.get("commit_probability", [])))
            if at is not None]
    rows += [{"position": p + 1, "step": at, "confidence": 1.0, "event": "revised"}
             for p, ats in enumerate(run.get("revised_at", [])) for at in ats]
    return pd.DataFrame(rows, columns=["position", "step", "confidence", "event"])


def build(stream, info: dict, infill=None, records=None, check=None, check_infill=None, pacer=None) -> None:
    """The Text diffusion tab. `stream(prompt, gen_length, num_inference_steps, seed, block_length=, threshold=,
    editing_threshold=)` and `infill(prompt, template, num_inference_steps, seed)` are the pipeline's; `records(output)`
    the API's step JSON; `check` / `check_infill` their input checks (the API's order); `pacer` paces screen updates."""
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
            with gr.Row():
                gen_length = gr.Slider(g_lo, g_hi, value=d["gen_length"], step=g_step, label="Length (tokens)")
                steps = gr.Slider(1, g_hi, value=d["num_inference_steps"], step=1, label="Refinement steps")
            gr.Markdown(KNOBS)
            with gr.Row():
                block_length = gr.Slider(0, g_hi, value=0, step=1, label="Block length (0: all)",
                                         elem_id="textdiff-block")
                threshold = gr.Slider(0, 1, value=0, step=0.05, label="Threshold (0: off)")
                editing = gr.Slider(0, 1, value=0, step=0.05, label="Editing (0: off)",
                                    elem_id="textdiff-editing")
            with gr.Row():
                seed = seed_input()
                randomize = gr.Checkbox(value=True, label="Randomize seed")
            with gr.Accordion("Fill the gaps (infilling): the answer with `_` for each missing word", open=False):
                template = gr.Textbox(label="Template", value=TEMPLATES[0][1], elem_id="textdiff-template")
                fill = gr.Button("Fill the gaps", elem_id="textdiff-fill", interactive=not info.get("missing"))
                infill_examples = gr.Column()  # filled below, once the outputs exist
            if info.get("vocabulary"):
                gr.Markdown(vocabulary_note(info))
        with gr.Column():
            text = gr.Textbox(label="Text", lines=3, interactive=False, elem_id="textdiff-output")
            canvas = gr.HighlightedText(label="Canvas (▒ still masked)", combine_adjacent=False, show_legend=True,
                                        color_map={NEW: "#f59e0b", REVISED: "#ef4444"}, elem_id="textdiff-canvas")
            progress_bar = StepProgress(elem_id="textdiff-progress")
            stats = RunStats(elem_id="textdiff-stats")
            replay = gr.Slider(1, 2, value=1, step=1, label="Replay step (after a run)", interactive=False,
                               elem_id="textdiff-replay")
            per_step = gr.BarPlot(x="step", y="tokens", color="kind", title="Tokens committed per step", height=200,
                                  elem_id="textdiff-per-step")
            order = gr.ScatterPlot(x="position", y="step", color="confidence", height=220,
                                   title="Decoding order: the step that committed each position, and how sure it was",
                                   tooltip=["position", "step", "confidence", "event"], elem_id="textdiff-order")
            with gr.Accordion("Steps as JSON (what /text_diffusion returns)", open=False):
                steps_json = gr.JSON(label="steps")
            with gr.Row():  # take a run home (demo/export.py); its event is at the end of build()
                export_button = gr.Button("Download this run (HTML)", size="sm", scale=0, min_width=220,
                                          elem_id="textdiff-export")
                export_file = gr.File(label="This run, replayable offline (HTML)", interactive=False,
                                      elem_id="textdiff-export-file")
    shown = gr.State([])  # every step of the last run, for the replay slider

    def show_run(items):
        """Stream a run's steps, then its result, as this tab's outputs."""
        # The replay slider is skipped while a run streams (a value sent to it would fire its .change); the steps it
        # replays are emptied at once, so dragging it mid-run shows nothing of the last run.
        screen = Shown(text="", canvas=None, progress=None, stats=None, steps_json=None, replay=gr.skip(), shown=[],
                       per_step=None, order=None)
        for item in pacer(items):
            if item is None:  # a heartbeat: nothing new (Stop can end the run here)
                yield screen()
            elif is_step(item):
                yield screen(canvas=canvas_value(item), progress=progress(item), stats=step_stats(item))
            else:
                last = item.steps[-1] if item.steps else None
                n = max(len(item.steps), 1)
                yield (item.text, canvas_value(last), progress(last, done=True, seconds=item.seconds), run_stats(item),
                       records(item) if records else None, gr.Slider(1, max(n, 2), value=n, step=1, interactive=n > 1),
                       item.steps, committed_frame(item), order_frame(item))

    @endpoint("text_diffusion")
    def text_diffusion_fn(prompt, gen_length, num_inference_steps, seed, block_length=0, threshold=0.0,
                          editing_threshold=0.0):
        """Generate text by diffusion; streams the canvas at every step, then the text, the numbers and the records."""
        yield from show_run(stream(prompt, int(gen_length), int(num_inference_steps), int(seed),
                                   block_length=int(block_length) if block_length else None,
                                   threshold=float(threshold), editing_threshold=float(editing_threshold)))

    @endpoint("text_diffusion_infill")
    def infill_fn(prompt, template, num_inference_steps, seed):
        """Fill a template's gaps by diffusion, from the words on both sides; streams as /text_diffusion does."""
        yield from show_run(infill(prompt, template, int(num_inference_steps), int(seed)))

    def replay_fn(k, steps):
        """The canvas and progress at step k of the last run."""
        if not steps:
            return gr.skip(), gr.skip()
        step = steps[min(max(int(k), 1), len(steps)) - 1]
        return canvas_value(step), progress(step, done=step is steps[-1])  # the run's end stays "done"

    outputs = [text, canvas, progress_bar, stats, steps_json, replay, shown, per_step, order]
    event = gr.on([run.click, prompt.submit], None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        text_diffusion_fn, [prompt, gen_length, steps, seed, block_length, threshold, editing], outputs,
        api_name="text_diffusion", api_description="Text by diffusion: the whole answer starts masked and is refined "
        "in parallel (block by block, with block_length); streams the canvas at every step, then the step records.",
        validator=validator(check, text_diffusion_fn), preprocess=False)
    fill_event = gr.on([fill.click, template.submit], None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        infill_fn, [prompt, template, steps, seed], outputs, api_name="text_diffusion_infill",
        api_description="Infilling: the template's given words stay, each `_` is filled from both sides.",
        validator=validator(check_infill, infill_fn), preprocess=False)
    stop.click(None, cancels=[event, fill_event])
    replay.change(replay_fn, [replay, shown], [canvas, progress_bar], api_visibility="private", queue=False)
    # Cached examples (a click shows the result at once): the replay slider and its steps are a session's own and
    # are left as they are.
    shown_outputs = [text, canvas, progress_bar, stats, steps_json, per_step, order]
    keep = [outputs.index(o) for o in shown_outputs]
    cached_examples(EXAMPLES, [prompt, gen_length, steps, seed, block_length, threshold, editing], text_diffusion_fn,
                    shown_outputs, keep=keep, labels=[row[0] for row in EXAMPLES])
    with infill_examples:
        cached_examples(TEMPLATES, [prompt, template, steps, seed], infill_fn, shown_outputs, keep=keep,
                        labels=[t for _, t in TEMPLATES], label="Templates")

    # -- Take a run home: the last run as one self-contained HTML file with a step slider (demo/export.py) ----------
    @endpoint("export_text_diffusion")
    def export_text_diffusion_fn(records, prompt, text):
        """The records a /text_diffusion (or /text_diffusion_infill) run returned, its prompt and text, as one HTML
        file that replays the canvas step by step, offline."""
        return export.write_export("text-diffusion", export.text_diffusion_html(records, prompt, text))

    export_button.click(export_text_diffusion_fn, [steps_json, prompt, text], export_file,
                        api_name="export_text_diffusion",
                        api_description="Take a text-diffusion run home: the records a /text_diffusion run returned, "
                        "its prompt and its text -> one self-contained HTML file (no network) with a step slider that "
                        "replays the canvas, commits and revisions, and the records as JSON.",
                        validator=validator(export.check_text_diffusion, export_text_diffusion_fn), preprocess=False)
