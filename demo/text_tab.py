"""Text tab: a multi-turn chat whose replies stream one token per step, with the model's top next-token candidates
for every token. `/chat` is the chat (history in, history out); `/text` stays the single-turn API."""

import gradio as gr

from demo.widgets import (
    RANDOM_SEED_JS,
    Shown,
    StepProgress,
    cached_examples,
    candidates_label,
    endpoint,
    is_step,
    model_line,
    progress,
    readable,
    seed_input,
    validator,
)

EXAMPLES = [
    ["Explain in two sentences what a diffusion model is.", "You are a helpful assistant."],
    ["Write a haiku about the sea.", "You are a poet."],
    ["What is the capital of France?", ""],
]


def probability_spans(steps: list) -> list[tuple[str, float]]:
    """Each generated token with how unexpected it was (1 - its probability), for gr.HighlightedText's colour scale."""
    return [(s.info["token"], round(1 - s.info["probability"], 3)) for s in steps]


def plain_history(messages):
    """gr.Chatbot's messages ({"role", "content": text or [{"type": "text", "text": ...}, ...]}) as the pipeline's
    [{"role", "content": text}]; parts that are not text (none in this tab) are left out. Anything else comes back
    as it is, for the pipeline's check to name."""
    if not isinstance(messages, list):
        return messages
    turns = []
    for m in messages:
        if not isinstance(m, dict):
            turns.append(m)
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        turns.append({"role": m.get("role"), "content": content})
    return turns


LATEST = "Next-token candidates at the latest step"


def token_record(step) -> dict:
    """What the token inspector keeps of a step: the token, its probability and its candidates (as gr.Label shows them)."""
    return {"token": step.info["token"], "probability": step.info["probability"], "candidates": candidates_label(step)}


def build(stream, info: dict, check=None, pacer=None, concurrency: int = 1) -> None:
    """The Text tab. `stream` is TextPipeline.stream (with `history=` for the chat); `check` its input check
    (prompt, system_prompt, max_new_tokens, temperature, top_p, seed, history); `pacer` paces the screen updates of
    concurrent replies. `concurrency`: replies the model writes at once (llama.cpp batches them); the chat and
    `/text` share that limit, and `/translate` too."""
    pacer = pacer or (lambda items: items)
    d = info["defaults"]
    gr.Markdown(model_line(info))
    with gr.Row():
        with gr.Column(scale=3):
            chat = gr.Chatbot(label="Chat (each reply is written one token per step)", height=380, elem_id="text-chat",
                              buttons=["copy", "copy_all"], feedback_options=None,
                              placeholder="Ask anything: the reply streams token by token, and the panel on the "
                                          "right shows the model's top-5 candidates for every token.")
            prompt = gr.Textbox(label="Message (Enter sends, Shift+Enter starts a new line)", lines=1, max_lines=8,
                                value=EXAMPLES[0][0], placeholder="Ask anything...", elem_id="text-prompt")
            with gr.Row():
                run = gr.Button("Send", variant="primary", elem_id="text-run")
                stop = gr.Button("Stop")
                clear = gr.Button("New chat", elem_id="text-clear")
            with gr.Accordion("Settings", open=False):
                system_prompt = gr.Textbox(label="System prompt", value="You are a helpful assistant.", lines=2)
                max_new_tokens = gr.Slider(1, 1024, value=d["max_new_tokens"], step=1, label="Max new tokens")
                temperature = gr.Slider(0, 2, value=d["temperature"], step=0.05, label="Temperature (0 = greedy)")
                top_p = gr.Slider(0.05, 1, value=d["top_p"], step=0.05, label="Top-p")
                with gr.Row():
                    seed = seed_input()
                    randomize = gr.Checkbox(value=True, label="Randomize seed")
        with gr.Column(scale=2):
            progress_bar = StepProgress(elem_id="text-progress")
            candidates = gr.Label(label=LATEST, num_top_classes=5,
                                  elem_id="text-candidates")
            inspect = gr.Slider(1, 2, value=1, step=1, label="Token of the last reply to inspect", visible=False,
                                elem_id="text-inspect")
            colour = gr.Checkbox(value=False, label="Colour the last reply by each token's probability")
            coloured = gr.HighlightedText(label="Each token, coloured by how unexpected it was (1 - probability)",
                                          combine_adjacent=False, show_legend=False, visible=False, elem_id="text-coloured")
            output = gr.Textbox(visible=False)  # /text's first output: the single-turn reply
    tokens = gr.State([])  # the last reply's tokens, for the inspector
    # The conversation as /chat takes and returns it: [{"role": "user" | "assistant", "content": text}] (the chat box
    # shows it; its own format has parts, which an API client need not know).
    history = gr.JSON([], visible=False)

    @endpoint("text")
    def text_fn(prompt, system_prompt, max_new_tokens, temperature, top_p, seed):
        """Generate text; yields (text so far, progress, candidates of the latest token)."""
        screen = Shown(output="", progress=None, candidates=None, coloured=None)
        for item in pacer(stream(prompt, system_prompt, int(max_new_tokens), float(temperature), float(top_p), int(seed))):
            if item is None:  # a heartbeat: nothing new (Stop can end the run here)
                yield screen()
            elif is_step(item):
                yield screen(output=item.preview, progress=progress(item, unit="token"), candidates=candidates_label(item))
            else:
                last = item.steps[-1] if item.steps else None
                yield (item.text, progress(last, done=True, seconds=item.seconds, unit="token"), candidates_label(last),
                       probability_spans(item.steps))

    @endpoint("chat")
    def chat_fn(prompt, history, system_prompt, max_new_tokens, temperature, top_p, seed):
        """Answer `prompt` in the conversation so far. Yields (chat, message box, progress, candidates, coloured
        reply, inspector, tokens, history); the message moves into the chat at once, so it is never lost."""
        earlier = plain_history(history) or []
        asked = [*earlier, {"role": "user", "content": prompt}]
        # The message moves into the chat; the box empties; the last reply's colours and inspector go.
        yield (asked + [{"role": "assistant", "content": "…"}], "", None, gr.Label(None, label=LATEST), None,
               gr.Slider(visible=False), [], asked)
        # From here the message box is skipped (the user may be typing the next message); the hidden inspector's
        # value is only read on release, so a plain 1 keeps it as it is.
        screen = Shown(chat=None, prompt=gr.skip(), progress=None, candidates=None, coloured=None, inspect=1, tokens=[],
                       history=asked)
        for item in pacer(stream(prompt, system_prompt, int(max_new_tokens), float(temperature), float(top_p), int(seed),
                                 history=earlier)):
            if item is None:
                yield screen()
            elif is_step(item):
                so_far = asked + [{"role": "assistant", "content": item.preview}]  # kept if the reply is stopped
                yield screen(chat=so_far, history=so_far, progress=progress(item, unit="token"),
                             candidates=candidates_label(item))
            else:
                last = item.steps[-1] if item.steps else None
                n = len(item.steps)
                yield (asked + [{"role": "assistant", "content": item.text}], gr.skip(),
                       progress(last, done=True, seconds=item.seconds, unit="token"), candidates_label(last),
                       probability_spans(item.steps), gr.Slider(1, max(n, 2), value=max(n, 1), visible=n > 0),
                       [token_record(s) for s in item.steps], asked + [{"role": "assistant", "content": item.text}])

    def inspect_fn(k, records):
        """The candidates the model had at token k of the last reply."""
        if not records:
            return gr.skip()
        k = min(max(int(k), 1), len(records))
        r = records[k - 1]
        chosen = f"chosen: {readable(r['token'])}, {r['probability']:.0%}"
        return gr.Label(r["candidates"], label=f"Candidates at token {k} of {len(records)} ({chosen})")

    settings = [system_prompt, max_new_tokens, temperature, top_p, seed]
    check_chat = (lambda prompt, history, *rest: check(prompt, *rest, history=plain_history(history))) if check else None
    # The events run with preprocess=False: the validator sees what the client sent (a history in any shape, a
    # number that is not one) and names what is wrong, before the queue.
    chat_event = gr.on([run.click, prompt.submit], None, [seed, randomize], seed, js=RANDOM_SEED_JS).then(
        chat_fn, [prompt, history, *settings], [chat, prompt, progress_bar, candidates, coloured, inspect, tokens, history],
        api_name="chat", api_description="Chat with the LLM: the reply streams one token per step, with its top-5 "
        "next-token candidates.", validator=validator(check_chat, chat_fn), preprocess=False,
        concurrency_limit=concurrency, concurrency_id="llm")
    inspect.release(inspect_fn, [inspect, tokens], candidates, api_visibility="private", queue=False)
    colour.change(lambda on: gr.HighlightedText(visible=on), colour, coloured, api_visibility="private", queue=False)
    stop.click(None, cancels=[chat_event])
    fresh = lambda: ([], [], [], gr.Label(None, label=LATEST), gr.Slider(visible=False), None)  # noqa: E731
    clear.click(fresh, None, [chat, history, tokens, candidates, inspect, progress_bar], api_visibility="private", queue=False,
                cancels=[chat_event])

    # The single-turn API (no chat history): what `/text` has always been. Its trigger is never shown.
    single = gr.Button(visible=False)
    single.click(text_fn, [prompt, *settings], [output, progress_bar, candidates, coloured], api_name="text",
                 api_description="One prompt to the LLM, no chat history: the reply streams one token per step.",
                 validator=validator(check, text_fn), preprocess=False, concurrency_limit=concurrency,
                 concurrency_id="llm")
    # An example is a fresh chat: [message, no history, system prompt]; cached, its reply shows at once (the
    # inspector and its token records are a session's own and stay as they are).
    cached_examples([[message, [], system] for message, system in EXAMPLES], [prompt, history, *settings], chat_fn,
                    [chat, progress_bar, candidates, coloured, history], keep=(0, 2, 3, 4, 7),
                    labels=[message + (f"  (system: {system})" if system else "") for message, system in EXAMPLES])

