"""The guided path that opens Key differences: six numbered steps in the article's order, each two sentences and one
button that runs its experiment in place, with what to look for under the result. A learner who only presses the
next button sees every difference; the free-form tools stay below it."""

import gradio as gr

from demo.widgets import SPECIAL_TOKENS, candidates_label, is_step

PROMPT = "a large red circle in the center on a blue background"
SHOW = (1, 3, 6, 10, 16, 25)  # image steps shown, of 25
TEMPLATE = "The picture shows a _ red _ on the _ , set on a blue background ."

STEPS = [
    ("The whole picture, refined", "A diffusion model starts from pure noise and refines the *whole* image a little "
     "at every step. Press the button: the image model paints the prompt in 25 steps.",
     "Run image diffusion", "Every frame is the whole picture: the first ones already place the colours and the "
     "layout, the last ones only sharpen the edges. Nothing is drawn left to right."),
    ("One token at a time", "An LLM writes one token per step, left to right, each step a probability distribution "
     "over the next token. Press the button: the LLM describes the same picture.",
     "Run the LLM", "Each token was chosen from the candidates shown with their probabilities; once written it stays, "
     "and the next step can only add to the right."),
    ("Text by diffusion", "Text can be made the diffusion way too: the whole answer starts masked and every step "
     "commits the positions the model is surest of, anywhere. Press the button to watch the canvas fill in.",
     "Run text diffusion", "Several words are committed per step, often far apart (the end of the text early, a "
     "colour before the words around it): parallel, in any order, unlike the LLM's left-to-right."),
    ("What each can take back", "A diffusion language model may revise a word it committed when it becomes confident "
     "it is wrong; an LLM never takes a token back. Press the button: text diffusion with revision on, over a few seeds.",
     "Run with revision", "The revised words (before, after) are listed: each replaced a committed word that clashed "
     "with its neighbours. An LLM can only branch into a new continuation (the Branch experiment below)."),
    ("Fill the gap", "Because it refines every position at once, a diffusion model can fill gaps in the middle of a "
     "sentence, reading the words on both sides. Press the button: the same template to both kinds of model.",
     "Fill the gap", "Text diffusion keeps every given word and fills each `_` in place; the LLM can only go on from "
     "the words left of the first gap, and the rest of the template is lost."),
    ("What each costs", "Fewer, bigger steps are the price and the promise of parallel decoding. Press the button: one "
     "prompt from one token per step to the whole text at once, and the LLM beside it.",
     "Turn the dial", "Steps and forward passes fall as the blocks grow; repeated neighbours (\"red red\") appear when "
     "tokens are committed together. On a CPU the LLM's single-token passes are cheap: per-request speed can favour "
     "diffusion when few steps are needed, batched throughput favours the LLM."),
]


def build(image_stream, llm_stream, text_diffusion_stream, fill_gap, dial) -> None:
    """The six steps, inside the current Blocks. Each callable is the model side's own (app.py hands them over):
    `image_stream(prompt, ..., preview=True)`, `llm_stream(prompt, ...)`, `text_diffusion_stream(prompt, ...)`,
    `fill_gap(prompt, template, seed)` and `dial(prompt, seed)`."""
    gr.Markdown("## Start here: six steps, one button each\nThe prompt for every step: *" + PROMPT + "*.")
    results = []
    for number, (title, intro, button_label, look) in enumerate(STEPS, 1):
        with gr.Group(elem_id=f"guided-{number}"):
            gr.Markdown(f"### {number}. {title}\n{intro}")
            button = gr.Button(button_label, variant="primary" if number == 1 else "secondary",
                               elem_id=f"guided-{number}-run")
            results.append(_result(number))
            gr.Markdown(f"**What to look for:** {look}", elem_classes="guided-look")
        results[-1] = (button, results[-1])

    def whole_picture():
        frames = [item for item in image_stream(prompt=PROMPT, negative_prompt="", num_inference_steps=25,
                                                guidance_scale=None, seed=0, preview=True) if is_step(item)]
        return [(s.preview, f"step {s.index}") for s in frames if s.index in SHOW and s.preview is not None]

    def one_token():
        steps = [item for item in llm_stream(f"In one short sentence, describe a picture of {PROMPT}.", "", 20, 0.0, 1.0,
                                             0) if is_step(item)]
        spans = [(f"[{SPECIAL_TOKENS[s.info['token']]}]" if s.info["token"] in SPECIAL_TOKENS else s.info["token"],
                  f"{s.index}: p={s.info['probability']:.2f}") for s in steps]
        return spans, candidates_label(steps[len(steps) // 2]) if steps else None

    def by_diffusion():
        steps = [item for item in text_diffusion_stream(PROMPT, None, 8, 0) if is_step(item)]
        def word(token: str) -> str:
            return "· (end)" if token in ("[EOS]", "[PAD]", "</s>", "<|endoftext|>") else token

        return [[s.index, ", ".join(word(c["token"]) for c in s.info["committed"]), s.preview] for s in steps]

    def take_back():
        rows = []
        for seed in range(6):
            for item in text_diffusion_stream(PROMPT, None, 8, seed, editing_threshold=0.5):
                if is_step(item):
                    rows += [[seed, item.index, r["previous"], r["token"], r["probability"]] for r in item.info["revised"]]
        return rows or [[None, None, "(no word needed revising in these seeds)", "", None]]

    def gap():
        out = fill_gap(PROMPT, TEMPLATE, 0)
        return out["text_diffusion"]["text"], out["llm"]["text"]

    def cost():
        return [[r["model"], r["steps"], r["forward_passes"], r["seconds"], r["repeated_neighbours"], r["text"]]
                for r in dial(PROMPT, 0)]

    functions = (whole_picture, one_token, by_diffusion, take_back, gap, cost)
    for number, (fn, (button, outputs)) in enumerate(zip(functions, results), 1):
        button.click(fn, None, outputs, api_name=f"guided_step_{number}", api_visibility="private")


def _result(number: int):
    """The output components of step `number`."""
    if number == 1:
        return gr.Gallery(label="The whole image at steps 1, 3, 6, 10, 16, 25", columns=6, height=150,
                          elem_classes="pixelated", object_fit="contain", elem_id="guided-1-result")
    if number == 2:
        with gr.Row():
            tokens = gr.HighlightedText(label="Each token and its probability, in the order written",
                                        combine_adjacent=False, show_legend=False, elem_id="guided-2-result")
            candidates = gr.Label(label="The candidates at the middle token", num_top_classes=5)
        return [tokens, candidates]
    if number == 3:
        return gr.Dataframe(headers=["step", "committed", "canvas"], interactive=False, wrap=True,
                            elem_id="guided-3-result")
    if number == 4:
        return gr.Dataframe(headers=["seed", "step", "was", "became", "probability"], interactive=False,
                            elem_id="guided-4-result")
    if number == 5:
        with gr.Row():
            filled = gr.Textbox(label="Text diffusion (in place, both sides)", interactive=False,
                                elem_id="guided-5-result")
            continued = gr.Textbox(label="LLM (from the left only)", interactive=False)
        return [filled, continued]
    return gr.Dataframe(headers=["model", "steps", "forward passes", "seconds", "repeated neighbours", "text"],
                        interactive=False, wrap=True, elem_id="guided-6-result")
