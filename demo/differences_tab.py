"""Key differences tab: one prompt, both kinds of model, step by step, next to the article's comparison.

The diffusion model paints the prompt while the LLM describes it; a shared timeline replays any step
of both: at diffusion step k the whole picture, refined; at LLM step k the text so far, the token
chosen and its top-5 candidates. Each of the article's three differences links to the tab that shows it.
"""

import html

import gradio as gr

from demo.text_tab import candidates_html
from demo.ui import Slider, guarded, seed_input
from pipelines.base import Step

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


def table_markdown() -> str:
    rows = "\n".join(f"| **{name}** | {diffusion} | {llm} |" for name, diffusion, llm, _ in DIFFERENCES)
    return "| | Diffusion model | LLM |\n|---|---|---|\n" + rows


def counter_html(kind: str, steps: list[Step], total: int, passes_per_step: int, seconds: float | None = None) -> str:
    """Live counter: steps, forward passes, seconds per step, total time."""
    done = len(steps)
    elapsed = seconds if seconds is not None else (steps[-1].elapsed if steps else 0.0)
    per = elapsed / done if done else 0.0
    return (f"<div class='step-progress'><b>{html.escape(kind)}</b><br><progress value='{done}' max='{max(total, 1)}'></progress>"
            f"<br>steps {done} / {total} · forward passes {done * passes_per_step} · {per * 1000:.0f} ms per step · "
            f"{elapsed:.2f} s total</div>")


def build(tabs: gr.Tabs, compare=None, knobs=None, info: dict | None = None) -> None:
    """`compare(prompt, num_inference_steps, max_new_tokens, seed)` streams (side, item) pairs (pipelines.compare);
    `knobs(prompt, seed)` returns {"guidance": [(g, image)], "temperature": [(t, text)]}; `tabs` for the links."""
    info = info or {}
    d = info.get("defaults", {})
    gr.Markdown("## Diffusion vs LLM, live: one prompt, both kinds of model, step by step")
    if info.get("missing"):
        gr.Markdown(f"⚠️ {info['missing']}")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", value="a large red circle in the center on a blue background", scale=4,
                            elem_id="compare-prompt")
        steps = Slider(2, 50, value=d.get("num_inference_steps", 25), step=1, label="Diffusion steps", field="num_inference_steps")
        max_new_tokens = Slider(4, 64, value=24, step=1, label="LLM tokens (max)", field="max_new_tokens")
        seed = seed_input()
    with gr.Row():
        run = gr.Button("Run both", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop")
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Diffusion: the whole picture, refined every step")
            image = gr.Image(label="Predicted clean image at this step", format="png", height=256,
                             elem_classes=["pixelated", "enlarge"], interactive=False, elem_id="compare-image")
            diffusion_counter = gr.HTML(elem_id="compare-diffusion-counter")
        with gr.Column():
            gr.Markdown("### LLM: one token per step, left to right")
            text = gr.Textbox(label="Text so far", lines=4, interactive=False, elem_id="compare-text")
            candidates = gr.HTML(elem_id="compare-candidates")
            llm_counter = gr.HTML(elem_id="compare-llm-counter")
    timeline = gr.Slider(1, 2, value=1, step=1, label="Timeline: replay step k of both models", interactive=False,
                         elem_id="compare-timeline")
    caption = gr.Markdown(elem_id="compare-caption")
    with gr.Accordion("Step records (JSON)", open=False):
        records = gr.JSON(label="records")
    history = gr.State({"diffusion": [], "llm": []})

    gr.Markdown("### The knobs, explained by doing (same seed, three settings each)")
    with gr.Row():
        knob_button = gr.Button("Show the knobs")
    with gr.Row():
        with gr.Column():
            gr.Markdown(GUIDANCE_NOTE)
            guidance_gallery = gr.Gallery(label="guidance scale", columns=3, height=180, elem_classes="pixelated",
                                          object_fit="contain")
        with gr.Column():
            gr.Markdown(TEMPERATURE_NOTE)
            temperature_table = gr.Markdown("*Press **Show the knobs**: the same prompt and seed at three temperatures.*")

    gr.Markdown("### The article's three differences\n" + table_markdown())
    for name, _, _, targets in DIFFERENCES:
        with gr.Row():
            gr.Markdown(f"**{name}**: see it live in")
            for target in targets:
                button = gr.Button(TAB_TITLES[target], size="sm", min_width=80)
                button.click(lambda t=target: gr.Tabs(selected=t), None, tabs, api_visibility="private", queue=False)

    if compare is None:
        return

    @guarded
    def compare_fn(prompt, num_inference_steps, max_new_tokens, seed):
        """Run both models on one prompt; yields (image, text, records, counters, candidates, timeline, history)."""
        seen: dict[str, list[Step]] = {"diffusion": [], "llm": []}
        passes = 2 if d.get("guidance_scale", 5.0) > 1 else 1
        total = {"diffusion": int(num_inference_steps), "llm": int(max_new_tokens)}
        for side, item in compare(prompt, int(num_inference_steps), int(max_new_tokens), int(seed)):
            if isinstance(item, Step):
                seen[side].append(item)
                counter = counter_html("diffusion" if side == "diffusion" else "LLM", seen[side], total[side],
                                       passes if side == "diffusion" else 1)
                if side == "diffusion":
                    yield (item.preview if item.preview is not None else gr.skip(), gr.skip(), gr.skip(), counter,
                           gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
                else:
                    yield (gr.skip(), item.preview, gr.skip(), gr.skip(), counter, candidates_html(item), gr.skip(),
                           gr.skip(), gr.skip())
            else:  # the final CompareOutput
                n = max(len(seen["diffusion"]), len(seen["llm"]), 2)
                state = {"diffusion": [s.preview for s in seen["diffusion"]],
                         "llm": [(s.preview, s) for s in seen["llm"]]}
                yield (item.image, item.text, item.records,
                       counter_html("diffusion", seen["diffusion"], len(seen["diffusion"]), passes, item.seconds["diffusion"]),
                       counter_html("LLM", seen["llm"], len(seen["llm"]), 1, item.seconds["llm"]),
                       candidates_html(seen["llm"][-1] if seen["llm"] else None),
                       gr.Slider(1, n, value=n, step=1, interactive=True), replay_caption(n, state), state)

    def replay_caption(k: int, state: dict) -> str:
        nd, nl = len(state["diffusion"]), len(state["llm"])
        d_txt = f"diffusion step {min(k, nd)} / {nd}: the whole image, one refinement further"
        if nl:
            step = state["llm"][min(k, nl) - 1][1]
            l_txt = f"LLM step {min(k, nl)} / {nl}: chose {step.info['token']!r} (p = {step.info['probability']:.2f})"
        else:
            l_txt = "LLM: no tokens"
        return f"**Step {k}** · {d_txt} · {l_txt}" + (" (finished earlier)" if k > nl else "")

    def replay_fn(k, state):
        """Show step k of both models from the last run."""
        k = int(k)
        if not state["diffusion"] and not state["llm"]:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        img = state["diffusion"][min(k, len(state["diffusion"])) - 1] if state["diffusion"] else gr.skip()
        text_so_far, step = state["llm"][min(k, len(state["llm"])) - 1] if state["llm"] else ("", None)
        return img, text_so_far, candidates_html(step), replay_caption(k, state)

    @guarded
    def knobs_fn(prompt, seed):
        """Guidance scale and temperature at three settings each, same seed."""
        out = knobs(prompt, int(seed))
        rows = "\n".join(f"| {t:g} | {html.escape(s)} |" for t, s in out["temperature"])
        return ([(img, f"guidance {g:g}") for g, img in out["guidance"]],
                "| temperature | text |\n|---|---|\n" + rows)

    event = run.click(compare_fn, [prompt, steps, max_new_tokens, seed],
                      [image, text, records, diffusion_counter, llm_counter, candidates, timeline, caption, history],
                      api_name="compare")
    stop.click(None, cancels=[event])
    timeline.change(replay_fn, [timeline, history], [image, text, candidates, caption], api_name="compare_step",
                    queue=False)
    knob_button.click(knobs_fn, [prompt, seed], [guidance_gallery, temperature_table], api_name="knobs")


if __name__ == "__main__":  # python -m demo.differences_tab  (bundled models)
    from app import backend_for_tab

    with gr.Blocks(title="Key differences") as demo:
        with gr.Tabs() as tabs:
            with gr.Tab("Key differences", id="differences"):
                build(tabs, **backend_for_tab("differences"))
    demo.queue().launch()
