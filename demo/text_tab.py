"""Text tab: prompt -> streamed text, one token per step, with the model's top next-token candidates."""

import gradio as gr

from demo.ui import (RANDOM_SEED_JS, Slider, Textbox, candidates_label, guarded, model_line, progress_html, seed_input,
                     validator)
from pipelines.base import Step

EXAMPLES = [
    ["Explain in two sentences what a diffusion model is.", "You are a helpful assistant."],
    ["Write a haiku about the sea.", "You are a poet."],
    ["What is the capital of France?", ""],
]


def probability_spans(steps: list[Step]) -> list[tuple[str, float]]:
    """Each generated token with how unexpected it was (1 - its probability), for gr.HighlightedText's colour scale."""
    return [(s.info["token"], round(1 - s.info["probability"], 3)) for s in steps]


def build(stream, info: dict, check=None) -> None:
    """The Text tab. `stream` is TextPipeline.stream."""
    d = info["defaults"]
    gr.Markdown(model_line(info))
    with gr.Row():
        with gr.Column():
            prompt = Textbox(field="prompt", label="Prompt", lines=4, placeholder="Ask anything...", elem_id="text-prompt")
            system_prompt = Textbox(field="system_prompt", label="System prompt", value="You are a helpful assistant.", lines=2)
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="text-run")
                stop = gr.Button("Stop")
            with gr.Accordion("Settings", open=False):
                max_new_tokens = Slider(1, 1024, value=d.get("max_new_tokens", 128), step=1, label="Max new tokens", field="max_new_tokens")
                temperature = Slider(0, 2, value=d.get("temperature", 0.7), step=0.05, label="Temperature (0 = greedy)", field="temperature")
                top_p = Slider(0.05, 1, value=d.get("top_p", 0.9), step=0.05, label="Top-p", field="top_p")
                with gr.Row():
                    seed = seed_input()
                    randomize = gr.Checkbox(value=True, label="Randomize seed")
        with gr.Column():
            output = gr.Textbox(label="Output (one token per step)", lines=10, interactive=False, elem_id="text-output")
            progress = gr.HTML(progress_html(None, label="token"), elem_id="text-progress")
            candidates = gr.Label(label="Next-token candidates at the latest step", num_top_classes=5,
                                  elem_id="text-candidates")
            colour = gr.Checkbox(value=False, label="Colour the text by each token's probability")
            coloured = gr.HighlightedText(label="Each token, coloured by how unexpected it was (1 - probability)",
                                          combine_adjacent=False, show_legend=False, visible=False, elem_id="text-coloured")

    @guarded
    def text_fn(prompt, system_prompt, max_new_tokens, temperature, top_p, seed):
        """Generate text; yields (text so far, progress, candidates of the latest token)."""
        for item in stream(prompt, system_prompt, int(max_new_tokens), float(temperature), float(top_p), int(seed)):
            if isinstance(item, Step):
                yield item.preview, progress_html(item, label="token"), candidates_label(item), gr.skip()
            else:
                last = item.steps[-1] if item.steps else None
                yield (item.text, progress_html(last, label="token", done=True, seconds=item.seconds), candidates_label(last),
                       probability_spans(item.steps))

    inputs = [prompt, system_prompt, max_new_tokens, temperature, top_p, seed]
    event = run.click(None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        text_fn, inputs, [output, progress, candidates, coloured], api_name="text", validator=validator(check, text_fn))
    colour.change(lambda on: gr.HighlightedText(visible=on), colour, coloured, api_name=False, queue=False)
    stop.click(None, cancels=[event])
    gr.Examples(EXAMPLES, [prompt, system_prompt])


if __name__ == "__main__":  # python -m demo.text_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("text", build)
