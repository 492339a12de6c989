"""Translate tab: text + languages -> translation, streamed token by token."""

import gradio as gr

from demo.widgets import StepProgress, cached_examples, endpoint, is_step, model_line, progress, validator

EXAMPLES = [
    ["The weather is nice today.", "English", "French"],
    ["Where is the train station?", "English", "Spanish"],
    ["Je voudrais un café, s'il vous plaît.", "French", "English"],
]


def build(translate, info: dict, languages: list[str], check=None, pacer=None, concurrency: int = 1) -> None:
    """The Translate tab. `translate(text, source_language, target_language)` streams Steps then a TextOutput;
    `pacer` paces the screen updates of concurrent translations."""
    pacer = pacer or (lambda items: items)
    gr.Markdown(model_line(info))
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=5, value=EXAMPLES[0][0])
            with gr.Row():
                source = gr.Dropdown(languages, value="English", label="From", allow_custom_value=True)
                target = gr.Dropdown(languages, value="French", label="To", allow_custom_value=True)
            with gr.Row():
                run = gr.Button("Translate", variant="primary", elem_id="translate-run")
                stop = gr.Button("Stop")
        with gr.Column():
            output = gr.Textbox(label="Translation", lines=5, interactive=False)
            progress_bar = StepProgress(elem_id="translate-progress")

    @endpoint("translate")
    def translate_fn(text, source_language, target_language):
        """Translate; yields (translation so far, progress)."""
        for item in pacer(translate(text, source_language, target_language)):
            if item is None:  # a heartbeat: nothing new (Stop can end the run here)
                yield gr.skip(), gr.skip()
            elif is_step(item):
                yield item.preview, progress(item, unit="token")
            else:
                last = item.steps[-1] if item.steps else None
                yield item.text, progress(last, done=True, seconds=item.seconds, unit="token")

    event = run.click(translate_fn, [text, source, target], [output, progress_bar], api_name="translate",
                      api_description="Translate a text with the LLM, streamed one token per step.",
                      validator=validator(check, translate_fn), preprocess=False, concurrency_limit=concurrency,
                      concurrency_id="llm")
    stop.click(None, cancels=[event])
    cached_examples(EXAMPLES, [text, source, target], translate_fn, [output, progress_bar],
                    labels=[f"{text}  ({source} → {target})" for text, source, target in EXAMPLES])

