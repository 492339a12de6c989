"""Key differences tab: one prompt, three lanes, step by step, next to the article's comparison, and
experiments that turn each claim into something a learner runs.

The image diffusion model paints the prompt while the text-diffusion model and the LLM describe it; a
shared timeline replays any step of all three: at diffusion step k the whole picture, refined; at text
diffusion step k the whole text with that step's commits, anywhere; at LLM step k the text so far, the
token chosen and its top-5 candidates. Then: branch the LLM at a step (a written token is never revised),
switch the image prompt mid-way (early steps settle layout and colours), and measure what each model's
cost grows with. Each of the article's three differences links to the tab that shows it.
"""


import gradio as gr

from demo import export
from demo import guided as guided_path
from demo.text_diffusion_tab import canvas_value
from demo.widgets import Shown, StepProgress, candidates_label, endpoint, is_step, seed_input, validator

DIFFERENCES = [
    ("Purpose and domain",
     "Diffusion models make **continuous** data: pixels, sound waves, video frames.",
     "LLMs make **discrete** data: text, as a sequence of tokens from a fixed vocabulary.",
     ["image", "audio", "text"]),
    ("Underlying principle",
     "Start from pure noise and **refine the whole output a little at every step**. Every step sees and changes "
     "everything at once: move the timeline and watch the whole picture sharpen.",
     "Write **one token per step, left to right**. Each step is a probability distribution over the next token; "
     "a written token is never revised: move the timeline and watch the text grow.",
     ["image", "text"]),
    ("Applications",
     "Image generation, audio synthesis, video synthesis.",
     "Text generation, natural-language understanding, translation.",
     ["image", "audio", "video", "text", "understand", "translate"]),
]
TAB_TITLES = {"image": "Image", "audio": "Audio", "video": "Video", "text": "Text", "understand": "Understand",
              "translate": "Translate"}
GUIDANCE_NOTE = ("**Guidance scale (diffusion)**: how hard each step pulls the picture towards the prompt, by "
                 "comparing the prediction with and without it. 1 ignores the prompt's pull; high values exaggerate it.")
TEMPERATURE_NOTE = ("**Temperature (LLM)**: how the next token is drawn from its distribution. 0 always takes the most "
                    "likely token; higher values flatten the distribution, so rarer tokens get picked.")


PROMPT = "a large red circle in the center on a blue background"
SWITCH_AFTER = "a large yellow circle in the center on a green background"
SWITCH_ROW = (2, 6, 10, 15, 20, 24)  # the switch steps shown side by side (of 25)
BRANCH_NOTE = ("**Branch the LLM.** An LLM never revises a token it wrote. Pick a step and one of that step's top-5 "
               "candidates: the LLM continues greedily from there. Everything before the step stays; what follows "
               "changes.")
SWITCH_NOTE = ("**Switch the diffusion prompt mid-way.** The early denoising steps settle the layout and the colours, "
               "the late ones only details. Start with the prompt, switch to another from a given step: switched early, "
               "the picture follows the new prompt; switched late, it keeps the first one's colours.")
FILL_TEMPLATE = "The picture shows a _ red _ on the _ , set on a blue background ."
FILL_NOTE = ("**Fill the gap.** Give both kinds of model the same sentence with gaps. Text diffusion refines every "
             "position in parallel, so it fills each gap in place from the words on *both* sides. An LLM writes left "
             "to right: all it can do is go on from the words before the first gap, and the rest is lost.")
DIAL_NOTE = ("**The dial: from one token per step to the whole text at once.** The same prompt with the block length at "
             "1 (left to right, one token per step, as an LLM), 4, 8 and the whole canvas: fewer steps and forward "
             "passes as the blocks grow, and more neighbouring words that repeat, since tokens committed together "
             "are chosen without seeing each other. The LLM's line is beside them.")
COST_NOTE = ("**What grows with the output.** An LLM runs its network once per token, so its forward passes (and "
             "seconds) grow with the length. A diffusion model runs its network once per step (twice with guidance) "
             "over the *whole* output, so its passes stay at its step count whatever the size; only each pass gets "
             "bigger. Measured live on this machine.")


def seconds_frame(records: dict):
    """Per-step seconds of every lane, for a line plot (pandas is imported here, on first use: it is a second of
    the app's start-up otherwise)."""
    import pandas as pd

    names = {"diffusion": "image diffusion", "text_diffusion": "text diffusion", "llm": "LLM"}
    rows = [{"step": r["step"], "seconds": r["seconds"] or 0.0, "lane": names[lane]}
            for lane in names for r in records.get(lane, [])]
    return pd.DataFrame(rows, columns=["step", "seconds", "lane"])


def probability_frame(records: dict):
    """The chosen token's probability at each LLM step."""
    import pandas as pd

    rows = [{"step": r["step"], "probability": r["probability"], "token": r["token"]} for r in records.get("llm", [])]
    return pd.DataFrame(rows, columns=["step", "probability", "token"])


def branch_value(records: list[dict], step: int) -> list[tuple[str, str | None]]:
    """The branched text for gr.HighlightedText: kept tokens plain, the forced one and what followed labelled."""
    return [(r["token"], None if r["step"] < step else "branched here" if r["step"] == step else "new continuation")
            for r in records]


def table_markdown() -> str:
    rows = "\n".join(f"| **{name}** | {diffusion} | {llm} |" for name, diffusion, llm, _ in DIFFERENCES)
    return "| | Diffusion model | LLM |\n|---|---|---|\n" + rows


def counter(kind: str, steps: list, total: int, passes_per_step: int, seconds: float | None = None) -> dict:
    """A lane's counter as data (a StepProgress value): steps, of how many, forward passes, seconds."""
    done = len(steps)
    elapsed = seconds if seconds is not None else (steps[-1].elapsed if steps else 0.0)
    return {"step": done, "total": max(total, 1), "seconds": round(elapsed, 3), "done": seconds is not None,
            "label": kind, "passes": done * passes_per_step}


def build(tabs: gr.Tabs, compare=None, knobs=None, branch=None, switch=None, cost=None, fill_gap=None, dial=None,
          guided: dict | None = None, info: dict | None = None, checks: dict | None = None) -> None:
    """`compare(prompt, num_inference_steps, max_new_tokens, seed)` streams (side, item) pairs (pipelines.compare);
    `knobs(prompt, seed)` returns {"guidance": [(g, image)], "temperature": [(t, text)]}; `branch(prompt, step,
    candidate, max_new_tokens, seed)` -> (text, records); `switch(prompt, prompt_after, switch_step,
    num_inference_steps, seed)` -> ImageOutput; `cost()` -> rows; `fill_gap(prompt, template, seed)` -> {"text_diffusion",
    "llm"}; `dial(prompt, seed)` -> rows; `guided`: the guided path's callables (demo/guided.py); `tabs` for the links."""
    info, checks = info or {}, checks or {}
    d = info.get("defaults", {})
    if guided:
        guided_path.build(**guided)
    gr.Markdown("## Diffusion vs LLM, live: one prompt, three kinds of model, step by step")
    if info.get("missing"):
        gr.Markdown(f"⚠️ {info['missing']}")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", value=PROMPT, scale=4, elem_id="compare-prompt")
        steps = gr.Slider(2, 50, value=d.get("num_inference_steps", 25), step=1, label="Diffusion steps")
        max_new_tokens = gr.Slider(4, 64, value=24, step=1, label="LLM tokens (max)")
        seed = seed_input()
    with gr.Row():
        run = gr.Button("Run all three", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Image diffusion: the whole picture, refined every step")
            image = gr.Image(label="Predicted clean image at this step", format="png", height=256,
                             elem_classes=["pixelated", "enlarge"], interactive=False, elem_id="compare-image")
            diffusion_counter = StepProgress(elem_id="compare-diffusion-counter")
        with gr.Column():
            gr.Markdown("### Text diffusion: the whole text, several words per step, any order")
            td_canvas = gr.HighlightedText(label="Canvas (▒ still masked)", combine_adjacent=False,
                                           color_map={"committed at this step": "#f59e0b"}, elem_id="compare-td-canvas")
            td_counter = StepProgress(elem_id="compare-td-counter")
        with gr.Column():
            gr.Markdown("### LLM: one token per step, left to right")
            text = gr.Textbox(label="Text so far", lines=4, interactive=False, elem_id="compare-text")
            candidates = gr.Label(label="Next-token candidates", num_top_classes=5, elem_id="compare-candidates")
            llm_counter = StepProgress(elem_id="compare-llm-counter")
    timeline = gr.Slider(1, 2, value=1, step=1, label="Timeline: replay step k of all three", interactive=False,
                         elem_id="compare-timeline")
    caption = gr.Markdown(elem_id="compare-caption")
    with gr.Row():
        seconds_plot = gr.LinePlot(x="step", y="seconds", color="lane", title="Seconds per step, each lane", height=220)
        probability_plot = gr.LinePlot(x="step", y="probability", title="LLM: probability of the chosen token", height=220,
                                       tooltip=["token", "probability"], y_lim=[0, 1])
    with gr.Accordion("Step records (JSON)", open=False):
        records = gr.JSON(label="records")
    history = gr.State({"diffusion": [], "text_diffusion": [], "llm": []})

    # -- Take a run home: the last run as one self-contained HTML file with a step slider (demo/export.py) ----------
    with gr.Row():
        export_button = gr.Button("Download this run (HTML)", size="sm", scale=0, min_width=220, elem_id="compare-export")
        export_file = gr.File(label="This run, replayable offline (HTML)", interactive=False,
                              elem_id="compare-export-file")

    @endpoint("export_compare")
    def export_compare_fn(records, prompt):
        """The records a /compare run returned, as one HTML file that replays every lane step by step, offline."""
        return export.write_export("compare", export.compare_html(records, prompt))

    export_button.click(export_compare_fn, [records, prompt], export_file, api_name="export_compare",
                        api_description="Take a comparison home: the records a /compare run returned and its prompt "
                        "-> one self-contained HTML file (images inline, no network) with a step slider that replays "
                        "every lane, and the records as JSON.",
                        validator=validator(export.check_compare, export_compare_fn), preprocess=False)
    # -- end of the export block ------------------------------------------------------------------------------------

    gr.Markdown("## Experiments")
    with gr.Group():
        gr.Markdown(BRANCH_NOTE)
        with gr.Row():
            branch_step = gr.Slider(1, 64, value=3, step=1, label="At LLM step", elem_id="branch-step")
            branch_candidate = gr.Slider(1, 5, value=2, step=1, label="Take candidate (rank)", elem_id="branch-candidate")
            branch_button = gr.Button("Branch", elem_id="branch-run")
        branch_text = gr.Textbox(label="Branched text", interactive=False, elem_id="branch-output")
        branch_view = gr.HighlightedText(label="Kept · branched here · new continuation", combine_adjacent=True,
                                         color_map={"branched here": "#ef4444", "new continuation": "#3b82f6"})
        branch_records = gr.JSON(label="Branch records (llm format)", visible=False)
    with gr.Group():
        gr.Markdown(SWITCH_NOTE)
        with gr.Row():
            prompt_after = gr.Textbox(label="Then switch to", value=SWITCH_AFTER, scale=3, elem_id="switch-after")
            switch_step = gr.Slider(1, 50, value=2, step=1, label="From step")
            switch_button = gr.Button("Switch", elem_id="switch-run")
            row_button = gr.Button("A row of switch steps", elem_id="switch-row-run")
        with gr.Row():
            switch_image = gr.Image(label="Switched", format="png", height=200, elem_classes=["pixelated", "enlarge"],
                                    interactive=False, elem_id="switch-output")
            switch_row = gr.Gallery(label="Switched at step k of 25", columns=len(SWITCH_ROW), height=200,
                                    elem_classes="pixelated", object_fit="contain", elem_id="switch-row")
    with gr.Group():
        gr.Markdown(FILL_NOTE)
        with gr.Row():
            template = gr.Textbox(label="Template (`_` for each missing word)", value=FILL_TEMPLATE, scale=4,
                                  elem_id="fill-template")
            fill_button = gr.Button("Fill the gap", elem_id="fill-run")
        with gr.Row():
            filled = gr.Textbox(label="Text diffusion: fills the gaps in place, reading both sides", interactive=False,
                                elem_id="fill-diffusion")
            continued = gr.Textbox(label="LLM: can only go on from the words left of the first gap", interactive=False,
                                   elem_id="fill-llm")
    with gr.Group():
        gr.Markdown(DIAL_NOTE)
        dial_button = gr.Button("Turn the dial", elem_id="dial-run")
        dial_table = gr.Dataframe(headers=["model", "steps", "forward_passes", "seconds", "repeated_neighbours", "text"],
                                  interactive=False, wrap=True, elem_id="dial-table")
    with gr.Group():
        gr.Markdown(COST_NOTE)
        cost_button = gr.Button("Measure", elem_id="cost-run")
        with gr.Row():
            passes_plot = gr.LinePlot(x="size", y="forward_passes", color="model", height=240,
                                      title="Forward passes vs output size (× the smallest)", elem_id="cost-passes")
            cost_seconds_plot = gr.LinePlot(x="size", y="seconds", color="model", height=240,
                                            title="Seconds vs output size (× the smallest)")

    gr.Markdown("### The knobs, explained by doing (same seed, three settings each)")
    with gr.Row():
        knob_button = gr.Button("Show the knobs for this prompt")
    with gr.Row():
        with gr.Column():
            gr.Markdown(GUIDANCE_NOTE)
            guidance_gallery = gr.Gallery(label="guidance scale", columns=3, height=180, elem_classes="pixelated",
                                          object_fit="contain", elem_id="knobs-guidance")
        with gr.Column():
            gr.Markdown(TEMPERATURE_NOTE)
            temperature_table = gr.Dataframe(headers=["temperature", "text"], datatype=["number", "str"],
                                             column_widths=["22%", "78%"],
                                             interactive=False, wrap=True, elem_id="knobs-temperature")

    gr.Markdown("### The article's three differences\n" + table_markdown())
    for name, _, _, targets in DIFFERENCES:
        with gr.Row():
            gr.Markdown(f"**{name}**: see it live in")
            for target in targets:
                button = gr.Button(TAB_TITLES[target], size="sm", min_width=80)
                button.click(lambda t=target: gr.Tabs(selected=t), None, tabs, api_visibility="private", queue=False)

    if compare is None:
        return

    @endpoint("compare")
    def compare_fn(prompt, num_inference_steps, max_new_tokens, seed):
        """Run the three models on one prompt; yields (image, text, records, counters, candidates, timeline, ...)."""
        seen: dict[str, list] = {"diffusion": [], "text_diffusion": [], "llm": []}
        passes = 2 if d.get("guidance_scale", 5.0) > 1 else 1
        total = {"diffusion": int(num_inference_steps), "llm": int(max_new_tokens), "text_diffusion": 0}
        # The timeline is skipped while the three stream (a value sent to it would fire its .change); the steps it
        # replays are emptied at once, so dragging it mid-run shows nothing of the last run.
        screen = Shown(image=None, text="", records=None, diffusion_counter=None, llm_counter=None, candidates=None,
                       timeline=gr.skip(), caption="", history={"diffusion": [], "text_diffusion": [], "llm": []},
                       td_canvas=None, td_counter=None, seconds_plot=None, probability_plot=None)
        for side, item in compare(prompt, int(num_inference_steps), int(max_new_tokens), int(seed)):
            if item is None:  # a heartbeat: nothing new (Stop can end the run here)
                yield screen()
            elif is_step(item):
                seen[side].append(item)
                if side == "diffusion":
                    yield screen(image=item.preview,
                                 diffusion_counter=counter("image diffusion", seen[side], total[side], passes))
                elif side == "llm":
                    yield screen(text=item.preview, llm_counter=counter("LLM", seen[side], total[side], 1),
                                 candidates=candidates_label(item))
                else:
                    yield screen(td_canvas=canvas_value(item),
                                 td_counter=counter("text diffusion", seen[side], item.total, 1))
            else:  # the final CompareOutput
                n = max(len(v) for v in seen.values())
                state = {"diffusion": [s.preview for s in seen["diffusion"]], "text_diffusion": seen["text_diffusion"],
                         "llm": [(s.preview, s) for s in seen["llm"]]}
                td = seen["text_diffusion"]
                yield (item.image, item.text, item.records,
                       counter("image diffusion", seen["diffusion"], len(seen["diffusion"]), passes, item.seconds["diffusion"]),
                       counter("LLM", seen["llm"], len(seen["llm"]), 1, item.seconds["llm"]),
                       candidates_label(seen["llm"][-1] if seen["llm"] else None),
                       gr.Slider(1, max(n, 2), value=n, step=1, interactive=True), replay_caption(n, state), state,
                       canvas_value(td[-1] if td else None),
                       counter("text diffusion", td, len(td), 1, item.seconds.get("text_diffusion")) if td else None,
                       seconds_frame(item.records), probability_frame(item.records))

    def replay_caption(k: int, state: dict) -> str:
        nd, nt, nl = len(state["diffusion"]), len(state["text_diffusion"]), len(state["llm"])
        parts = [f"image diffusion step {min(k, nd)} / {nd}: the whole image, one refinement further"]
        if nt:
            step = state["text_diffusion"][min(k, nt) - 1]
            where = ", ".join(str(c["position"] + 1) for c in step.info["committed"])
            parts.append(f"text diffusion step {min(k, nt)} / {nt}: committed positions {where}")
        if nl:
            step = state["llm"][min(k, nl) - 1][1]
            parts.append(f"LLM step {min(k, nl)} / {nl}: chose {step.info['token']!r} (p = {step.info['probability']:.2f})"
                         + (" (finished earlier)" if k > nl else ""))
        return f"**Step {k}** · " + " · ".join(parts)

    def replay_fn(k, state):
        """Show step k of the three models from the last run."""
        k = int(k)
        if not any(state.values()):
            return (gr.skip(),) * 5
        img = state["diffusion"][min(k, len(state["diffusion"])) - 1] if state["diffusion"] else gr.skip()
        text_so_far, step = state["llm"][min(k, len(state["llm"])) - 1] if state["llm"] else ("", None)
        td = state["text_diffusion"]
        canvas = canvas_value(td[min(k, len(td)) - 1]) if td else gr.skip()
        return img, text_so_far, candidates_label(step), replay_caption(k, state), canvas

    @endpoint("branch")
    def branch_fn(prompt, step, candidate, max_new_tokens, seed):
        """Branch the comparison's LLM at `step`, taking candidate `candidate`; returns the new text and its records."""
        text, records = branch(prompt, int(step), int(candidate), int(max_new_tokens), int(seed))
        return text, records, branch_value(records, int(step))

    @endpoint("switch")
    def switch_fn(prompt, prompt_after, switch_step, num_inference_steps, seed):
        """The image model on `prompt`, switched to `prompt_after` from step `switch_step` on."""
        return switch(prompt, prompt_after, int(switch_step), int(num_inference_steps), int(seed)).image

    @endpoint("switch_row")
    def switch_row_fn(prompt, prompt_after, seed):
        """The switch at a row of steps (of 25), side by side."""
        return [(switch(prompt, prompt_after, k, 25, int(seed)).image, f"from step {k}") for k in SWITCH_ROW]

    @endpoint("cost")
    def cost_fn():
        """Measure forward passes and seconds against output size for each model."""
        import pandas as pd

        frame = pd.DataFrame(cost())
        return frame, frame

    @endpoint("knobs")
    def knobs_fn(prompt, seed):
        """Guidance scale and temperature at three settings each, same seed."""
        out = knobs(prompt, int(seed))
        return ([(img, f"guidance {g:g}") for g, img in out["guidance"]],
                [[t, text] for t, text in out["temperature"]])

    # The events run with preprocess=False: each validator sees what the client sent and names what is wrong.
    event = run.click(compare_fn, [prompt, steps, max_new_tokens, seed],
                      [image, text, records, diffusion_counter, llm_counter, candidates, timeline, caption, history,
                       td_canvas, td_counter, seconds_plot, probability_plot], api_name="compare",
                      api_description="One prompt to every kind of model: the image diffusion model paints it, the text "
                      "diffusion model and the LLM describe it; streams each lane's steps, then their records.",
                      validator=validator(checks.get("compare"), compare_fn), preprocess=False)
    stop.click(None, cancels=[event])
    timeline.change(replay_fn, [timeline, history], [image, text, candidates, caption, td_canvas],
                    api_visibility="private", queue=False)  # draws the last run's step k: no API of its own
    if branch is not None:
        branch_button.click(branch_fn, [prompt, branch_step, branch_candidate, max_new_tokens, seed],
                            [branch_text, branch_records, branch_view], api_name="branch",
                            api_description="Branch the comparison's LLM at a step, taking another of its top-5 "
                            "candidates; returns the new text and its step records.",
                            validator=validator(checks.get("branch"), branch_fn), preprocess=False)
    if switch is not None:
        switch_button.click(switch_fn, [prompt, prompt_after, switch_step, steps, seed], switch_image, api_name="switch",
                            api_description="The image model guided by one prompt, then by another from a given step.",
                            validator=validator(checks.get("switch"), switch_fn), preprocess=False)
        row_button.click(switch_row_fn, [prompt, prompt_after, seed], switch_row, api_name="switch_row",
                         api_description="The prompt switch at a row of steps, side by side.",
                         validator=validator(checks.get("switch_row"), switch_row_fn), preprocess=False)
    if fill_gap is not None:
        @endpoint("fill_gap")
        def fill_gap_fn(prompt, template, seed):
            """The same template to text diffusion (fills in place) and to the LLM (goes on from the left)."""
            out = fill_gap(prompt, template, int(seed))
            return out["text_diffusion"]["text"], out["llm"]["text"], out

        fill_json = gr.JSON(visible=False)
        fill_button.click(fill_gap_fn, [prompt, template, seed], [filled, continued, fill_json], api_name="fill_gap",
                          api_description="Fill a template's gaps by text diffusion, beside what the LLM writes from "
                          "the words left of the first gap.", validator=validator(checks.get("fill_gap"), fill_gap_fn),
                          preprocess=False)
    if dial is not None:
        @endpoint("dial")
        def dial_fn(prompt, seed):
            """One prompt at block lengths 1, 4, 8 and the whole canvas, and the LLM: steps, passes, seconds, text."""
            rows = dial(prompt, int(seed))
            return [[r[k] for k in ("model", "steps", "forward_passes", "seconds", "repeated_neighbours", "text")]
                    for r in rows]

        dial_button.click(dial_fn, [prompt, seed], dial_table, api_name="dial",
                          api_description="The parallelism dial: one prompt at several block lengths, and the LLM.",
                          validator=validator(checks.get("dial"), dial_fn), preprocess=False)
    if cost is not None:
        cost_button.click(cost_fn, None, [passes_plot, cost_seconds_plot], api_name="cost",
                          api_description="Measure what each kind of model pays as its output grows: forward passes "
                          "and seconds against output size.")
    knob_button.click(knobs_fn, [prompt, seed], [guidance_gallery, temperature_table], api_name="knobs",
                      api_description="The same seed at three guidance scales (images) and three temperatures (text).",
                      validator=validator(checks.get("knobs"), knobs_fn), preprocess=False)
    if gr.context.Context.root_block is not None:  # a first result on load (the app caches it: one run per process)
        gr.context.Context.root_block.load(knobs_fn, [prompt, seed], [guidance_gallery, temperature_table],
                                           api_visibility="private",
                                           show_progress_on=[guidance_gallery, temperature_table])  # not over the page
