"""Understand tab: text -> sentiment with probabilities, entities, keywords or a summary. Entities and
keywords are marked over the input text (gr.HighlightedText); the JSON stays beside them."""

import re

import gradio as gr

from demo.widgets import Shown, StepProgress, cached_examples, endpoint, is_step, model_line, progress, validator

TASKS = ["sentiment", "entities", "keywords", "summary"]
EXAMPLES = [
    ["The food was cold and the waiter was rude.", "sentiment"],
    ["Marie Curie worked in Paris and won the Nobel Prize in 1911 with Pierre Curie.", "entities"],
    ["Diffusion models generate images by removing noise step by step, while language models write one token at a time.",
     "keywords"],
]


def marked(text: str, result: dict) -> dict | None:
    """Entities (labelled by type) or keywords (labelled "keyword") as spans over `text`, for gr.HighlightedText."""
    if "entities" in result:
        found = [(e["text"], e["type"]) for e in result["entities"]]
    elif "keywords" in result:
        found = [(k["keyword"], "keyword") for k in result["keywords"]]
    else:
        return None
    spans = []
    for phrase, label in found:  # every whole-word occurrence, case-insensitive for keywords
        flags = re.IGNORECASE if label == "keyword" else 0
        for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, flags):
            if not any(s["start"] < m.end() and m.start() < s["end"] for s in spans):
                spans.append({"entity": label, "start": m.start(), "end": m.end()})
    return {"text": text, "entities": sorted(spans, key=lambda s: s["start"])}


def build(understand, info: dict, check=None) -> None:
    """The Understand tab. `understand(text, task)` yields a Step as each part is done (an entity typed, a summary
    token), then the result, a JSON-able dict."""
    gr.Markdown(model_line(info) + ". Sentiment and entity types come from label likelihoods, calibrated against a "
                "content-free input; keywords are the words the model finds most surprising.")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=6, value=EXAMPLES[0][0])
            task = gr.Radio(TASKS, value="sentiment", label="Task")
            with gr.Row():
                run = gr.Button("Analyse", variant="primary", elem_id="understand-run")
                stop = gr.Button("Stop")
        with gr.Column():
            spans = gr.HighlightedText(label="Entities / keywords in the text", combine_adjacent=False, show_legend=True,
                                       elem_id="understand-marked")
            label = gr.Label(label="Sentiment probabilities", num_top_classes=3)
            result = gr.JSON(label="Result (JSON)")
            progress_bar = StepProgress(elem_id="understand-progress")

    @endpoint("understand")
    def understand_fn(text, task):
        """Run one understanding task; yields its progress, then (JSON result, sentiment probabilities if any, marked
        spans if any, progress)."""
        screen = Shown(result=None, label=None, spans=None, progress=None)
        last = None
        for item in understand(text, task):
            if item is None:  # a heartbeat: nothing new (Stop can end the run here)
                yield screen()
            elif is_step(item):
                last = item
                yield screen(progress=progress(item, unit="part"))
            else:
                done = {"step": last.index if last else 1, "total": last.total if last else 1,
                        "seconds": item["seconds"], "done": True, "unit": "part"}
                yield item, item.get("probabilities"), marked(text, item), done

    # /understand's first output is still the JSON result; the marked spans come third.
    event = run.click(understand_fn, [text, task], [result, label, spans, progress_bar], api_name="understand",
                      api_description="Understand a text with the LLM: sentiment with probabilities, entities, keywords "
                      "or a one-sentence summary, as JSON.", validator=validator(check, understand_fn),
                      preprocess=False, show_progress="minimal")  # no overlay over its own bar
    stop.click(None, cancels=[event])
    cached_examples(EXAMPLES, [text, task], understand_fn, [result, label, spans, progress_bar],
                    labels=[f"{task}: {text}" for text, task in EXAMPLES])

