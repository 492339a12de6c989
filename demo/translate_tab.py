"""Translate tab: text + languages -> translation, streamed token by token."""

import gradio as gr

from demo.ui import TOKEN_STREAMS, Textbox, guarded, model_line, progress_html, validator
from pipelines.base import Step

EXAMPLES = [
    ["The weather is nice today.", "English", "French"],
    ["Where is the train station?", "English", "Spanish"],
    ["Je voudrais un café, s'il vous plaît.", "French", "English"],
]


def build(translate, info: dict, languages: list[str], check=None, concurrency: int = 1) -> None:
    """The Translate tab. `translate(text, source_language, target_language)` streams Steps then a TextOutput."""
    gr.Markdown(model_line(info))
    with gr.Row():
        with gr.Column():
            text = Textbox(field="text", label="Text", lines=5)
            with gr.Row():
                source = gr.Dropdown(languages, value="English", label="From", allow_custom_value=True)
                target = gr.Dropdown(languages, value="French", label="To", allow_custom_value=True)
            with gr.Row():
                run = gr.Button("Translate", variant="primary")
                stop = gr.Button("Stop")
        with gr.Column():
            output = gr.Textbox(label="Translation", lines=5, interactive=False)
            progress = gr.HTML(progress_html(None, label="token"))

    @guarded
    def translate_fn(text, source_language, target_language):
        """Translate; yields (translation so far, progress)."""
        for item in TOKEN_STREAMS(translate(text, source_language, target_language)):
            if isinstance(item, Step):
                yield item.preview, progress_html(item, label="token")
            else:
                last = item.steps[-1] if item.steps else None
                yield item.text, progress_html(last, label="token", done=True, seconds=item.seconds)

    event = run.click(translate_fn, [text, source, target], [output, progress], api_name="translate", validator=validator(check, translate_fn),
                      concurrency_limit=concurrency, concurrency_id="llm")
    stop.click(None, cancels=[event])
    gr.Examples(EXAMPLES, [text, source, target])


if __name__ == "__main__":  # python -m demo.translate_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("translate", build)
