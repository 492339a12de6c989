"""Understand tab: text -> sentiment with probabilities, entities, keywords or a summary (JSON)."""

import gradio as gr

from demo.ui import guarded, model_line

TASKS = ["sentiment", "entities", "keywords", "summary"]
EXAMPLES = [
    ["The food was cold and the waiter was rude.", "sentiment"],
    ["Marie Curie worked in Paris and won the Nobel Prize in 1911 with Pierre Curie.", "entities"],
    ["Diffusion models generate images by removing noise step by step, while language models write one token at a time.", "keywords"],
]


def build(understand, info: dict) -> None:
    """The Understand tab. `understand(text, task)` returns a JSON-able dict."""
    gr.Markdown(model_line(info) + ". Sentiment and entity types come from label likelihoods, calibrated against a "
                "content-free input; keywords are the words the model finds most surprising.")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=6)
            task = gr.Radio(TASKS, value="sentiment", label="Task")
            run = gr.Button("Analyse", variant="primary")
        with gr.Column():
            result = gr.JSON(label="Result")
            label = gr.Label(label="Sentiment probabilities", num_top_classes=3)

    @guarded
    def understand_fn(text, task):
        """Run one understanding task; returns (JSON result, sentiment probabilities if any)."""
        out = understand(text, task)
        return out, out.get("probabilities")

    run.click(understand_fn, [text, task], [result, label], api_name="understand")
    gr.Examples(EXAMPLES, [text, task])


if __name__ == "__main__":  # python -m demo.understand_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("understand", build)
