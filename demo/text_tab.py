"""Text tab: a multi-turn chat whose replies stream one token per step, with the model's top next-token candidates
for every token. `/chat` is the chat (history in, history out); `/text` stays the single-turn API."""

import gradio as gr

from demo.ui import (RANDOM_SEED_JS, TOKEN_STREAMS, Shown, Slider, Textbox, candidates_label, guarded, model_line,
                     progress_html, seed_input, validator)
from pipelines.base import Step

EXAMPLES = [
    ["Explain in two sentences what a diffusion model is.", "You are a helpful assistant."],
    ["Write a haiku about the sea.", "You are a poet."],
    ["What is the capital of France?", ""],
]


def probability_spans(steps: list[Step]) -> list[tuple[str, float]]:
    """Each generated token with how unexpected it was (1 - its probability), for gr.HighlightedText's colour scale."""
    return [(s.info["token"], round(1 - s.info["probability"], 3)) for s in steps]


def plain_history(messages: list[dict] | None) -> list[dict]:
    """gr.Chatbot's messages ({"role", "content": text or [{"type": "text", "text": ...}, ...]}) as the pipeline's
    [{"role", "content": text}]; parts that are not text (none in this tab) are left out."""
    turns = []
    for m in messages or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        turns.append({"role": m.get("role") if isinstance(m, dict) else None, "content": content})
    return turns


LATEST = "Next-token candidates at the latest step"


def token_record(step: Step) -> dict:
    """What the token inspector keeps of a step: the token, its probability and its candidates (as gr.Label shows them)."""
    return {"token": step.info["token"], "probability": step.info["probability"], "candidates": candidates_label(step)}


def build(stream, info: dict, check=None, concurrency: int = 1) -> None:
    """The Text tab. `stream` is TextPipeline.stream (with `history=` for the chat). `concurrency`: replies the model
    writes at once (llama.cpp batches them); the chat and `/text` share that limit, and `/translate` too."""
    d = info["defaults"]
    gr.Markdown(model_line(info))
    with gr.Row():
        with gr.Column(scale=3):
            chat = gr.Chatbot(label="Chat (each reply is written one token per step)", height=380, elem_id="text-chat",
                              buttons=["copy", "copy_all"], feedback_options=None,
                              placeholder="Ask anything: the reply streams token by token, and the panel on the "
                                          "right shows the model's top-5 candidates for every token.")
            prompt = Textbox(field="prompt", label="Message (Enter sends, Shift+Enter starts a new line)", lines=1, max_lines=8,
                             placeholder="Ask anything...", elem_id="text-prompt")
            with gr.Row():
                run = gr.Button("Send", variant="primary", elem_id="text-run")
                stop = gr.Button("Stop")
                clear = gr.Button("New chat", elem_id="text-clear")
            with gr.Accordion("Settings", open=False):
                system_prompt = Textbox(field="system_prompt", label="System prompt", value="You are a helpful assistant.",
                                        lines=2)
                max_new_tokens = Slider(1, 1024, value=d.get("max_new_tokens", 128), step=1, label="Max new tokens", field="max_new_tokens")
                temperature = Slider(0, 2, value=d.get("temperature", 0.7), step=0.05, label="Temperature (0 = greedy)", field="temperature")
                top_p = Slider(0.05, 1, value=d.get("top_p", 0.9), step=0.05, label="Top-p", field="top_p")
                with gr.Row():
                    seed = seed_input()
                    randomize = gr.Checkbox(value=True, label="Randomize seed")
        with gr.Column(scale=2):
            progress = gr.HTML(progress_html(None, label="token"), elem_id="text-progress")
            candidates = gr.Label(label=LATEST, num_top_classes=5,
                                  elem_id="text-candidates")
            inspect = gr.Slider(1, 2, value=1, step=1, label="Token of the last reply to inspect", visible=False,
                                elem_id="text-inspect")
            colour = gr.Checkbox(value=False, label="Colour the last reply by each token's probability")
            coloured = gr.HighlightedText(label="Each token, coloured by how unexpected it was (1 - probability)",
                                          combine_adjacent=False, show_legend=False, visible=False, elem_id="text-coloured")
            output = gr.Textbox(visible=False)  # /text's first output: the single-turn reply
    tokens = gr.State([])  # the last reply's tokens, for the inspector

    @guarded
    def text_fn(prompt, system_prompt, max_new_tokens, temperature, top_p, seed):
        """Generate text; yields (text so far, progress, candidates of the latest token)."""
        screen = Shown(output="", progress=progress_html(None, label="token"), candidates=None, coloured=None)
        for item in TOKEN_STREAMS(stream(prompt, system_prompt, int(max_new_tokens), float(temperature), float(top_p),
                                         int(seed))):
            if isinstance(item, Step):
                yield screen(output=item.preview, progress=progress_html(item, label="token"),
                             candidates=candidates_label(item))
            else:
                last = item.steps[-1] if item.steps else None
                yield (item.text, progress_html(last, label="token", done=True, seconds=item.seconds), candidates_label(last),
                       probability_spans(item.steps))

    @guarded
    def chat_fn(prompt, history, system_prompt, max_new_tokens, temperature, top_p, seed):
        """Answer `prompt` in the conversation so far. Yields (chat, message box, progress, candidates, coloured
        reply, inspector, tokens); the message moves into the chat at once, so it is never lost."""
        earlier = plain_history(history)
        asked = [*earlier, {"role": "user", "content": prompt}]
        # The message moves into the chat; the box empties; the last reply's colours and inspector go.
        yield (asked + [{"role": "assistant", "content": "…"}], "", progress_html(None, label="token"),
               gr.Label(None, label=LATEST), None, gr.Slider(visible=False), [])
        # From here the message box is skipped (the user may be typing the next message); the hidden inspector's
        # value is only read on release, so a plain 1 keeps it as it is.
        screen = Shown(chat=None, prompt=gr.skip(), progress=None, candidates=None, coloured=None, inspect=1, tokens=[])
        for item in TOKEN_STREAMS(stream(prompt, system_prompt, int(max_new_tokens), float(temperature), float(top_p),
                                         int(seed), history=earlier)):
            if isinstance(item, Step):
                yield screen(chat=asked + [{"role": "assistant", "content": item.preview}],
                             progress=progress_html(item, label="token"), candidates=candidates_label(item))
            else:
                last = item.steps[-1] if item.steps else None
                n = len(item.steps)
                yield (asked + [{"role": "assistant", "content": item.text}], gr.skip(),
                       progress_html(last, label="token", done=True, seconds=item.seconds), candidates_label(last),
                       probability_spans(item.steps), gr.Slider(1, max(n, 2), value=max(n, 1), visible=n > 0),
                       [token_record(s) for s in item.steps])

    def inspect_fn(k, records):
        """The candidates the model had at token k of the last reply."""
        if not records:
            return gr.skip()
        k = min(max(int(k), 1), len(records))
        r = records[k - 1]
        chosen = f"chosen: {r['token']!r}, {r['probability']:.0%}"
        return gr.Label(r["candidates"], label=f"Candidates at token {k} of {len(records)} ({chosen})")

    settings = [system_prompt, max_new_tokens, temperature, top_p, seed]
    check_chat = (lambda prompt, history, *rest: check(prompt, *rest)) if check else None
    chat_event = gr.on([run.click, prompt.submit], None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        chat_fn, [prompt, chat, *settings], [chat, prompt, progress, candidates, coloured, inspect, tokens],
        api_name="chat", validator=validator(check_chat, chat_fn), concurrency_limit=concurrency, concurrency_id="llm")
    inspect.release(inspect_fn, [inspect, tokens], candidates, api_name=False, queue=False)
    colour.change(lambda on: gr.HighlightedText(visible=on), colour, coloured, api_name=False, queue=False)
    stop.click(None, cancels=[chat_event])
    fresh = lambda: ([], [], gr.Label(None, label=LATEST), gr.Slider(visible=False), progress_html(None, label="token"))  # noqa: E731
    clear.click(fresh, None,
                [chat, tokens, candidates, inspect, progress], api_name=False, queue=False, cancels=[chat_event])

    # The single-turn API (no chat history): what `/text` has always been. Its trigger is never shown.
    single = gr.Button(visible=False)
    single.click(text_fn, [prompt, *settings], [output, progress, candidates, coloured], api_name="text",
                 validator=validator(check, text_fn), concurrency_limit=concurrency, concurrency_id="llm")
    examples = gr.Examples(EXAMPLES, [prompt, system_prompt])
    examples.dataset.headers = ["Message", "System prompt"]  # not the message box's long label with its key hints


if __name__ == "__main__":  # python -m demo.text_tab  (bundled model)
    from demo.standalone import launch_tab

    launch_tab("text", build)
