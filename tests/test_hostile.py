"""Hostile clients, from the outside (raw HTTP and gradio_client): chat histories of every shape and size, values of
the wrong type, too few values, cancels. Each is refused fast, by name, or bounded; the server keeps serving."""

import json
import time

import httpx
import pytest
from gradio_client.exceptions import ValidationError

pytestmark = pytest.mark.slow

CHAT = dict(system_prompt="You are brief.", max_new_tokens=4, temperature=0.0, top_p=1.0, seed=0, api_name="/chat")


def call(url: str, api_name: str, data: list) -> httpx.Response:
    return httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=30)


def test_a_history_of_thousands_of_empty_turns_is_refused_at_once(client, bundled):
    """The history cap counts messages as well as characters: 2000 empty turns (4 KB of JSON) used to hold an LLM
    slot for minutes."""
    empty = [{"role": r, "content": ""} for _ in range(2000) for r in ("user", "assistant")]
    t = time.perf_counter()
    with pytest.raises(ValidationError, match=r"- history: `history` holds 4000 messages; the limit is 200"):
        client.predict(prompt="Hi", history=empty, **CHAT)
    assert time.perf_counter() - t < 1.0


def test_a_long_history_is_cut_to_the_context_quickly(client):
    """30 turns of 1,000 characters (far over the context): the oldest are left out, each turn tokenized once; what
    is left is read once (at most MAX_CONTEXT_TOKENS)."""
    history = [{"role": r, "content": f"Turn {i}: " + "word " * 198} for i in range(15) for r in ("user", "assistant")]
    t = time.perf_counter()
    reply = client.predict(prompt="Say hi.", history=history, **CHAT)[-1]
    assert time.perf_counter() - t < 20 and reply[-1]["role"] == "assistant"


@pytest.mark.parametrize("history, message", [
    ("nonsense", "must be a list of {'role': 'user' or 'assistant', 'content': text} messages; got str"),
    ([{"role": "system", "content": "x"}], "message 0 is not {'role': 'user' or 'assistant', 'content': text}"),
    ([{"role": "user"}], "message 0 is not"), ([["user", "hi"]], "message 0 is not"), (7, "got int"),
])
def test_a_bad_history_is_refused_before_the_queue_saying_the_shape(client, history, message):
    with pytest.raises(ValidationError, match=r"- history: .*" + message.replace("(", r"\(").replace("{", r"\{")):
        client.predict(prompt="Hi", history=history, **CHAT)


def test_both_history_formats_are_taken(client):
    """The README's OpenAI-style history ({"role", "content": "text"}) and Gradio's (content as text parts)."""
    plain = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"}]
    parts = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}]} for m in plain]
    replies = [client.predict(prompt="What is my name?", history=h, **CHAT)[-1] for h in (plain, parts)]
    assert replies[0] == replies[1] and replies[0][:2] == plain


@pytest.mark.parametrize("system_prompt, shown", [({"a": 1}, "dict"), (["a"], "list"), (123, "int")])
def test_a_system_prompt_that_is_not_text_is_refused_by_its_own_name(client, system_prompt, shown):
    with pytest.raises(ValidationError, match=rf"- system_prompt: `system_prompt` must be text; got {shown}"):
        client.predict(prompt="Hi", history=[], **{**CHAT, "system_prompt": system_prompt})


def test_integers_are_integers_everywhere(client):
    image = dict(prompt="a red circle", negative_prompt="", num_inference_steps=5, guidance_scale=3.0, width=64,
                 height=64, api_name="/image")
    with pytest.raises(ValidationError, match=r"- seed: `seed` must be a whole number"):
        client.predict(seed=1.5, **image)
    with pytest.raises(ValidationError, match=r"- num_inference_steps: .* whole number"):
        client.predict(seed=1, **{**image, "num_inference_steps": 10.5})


def test_branch_takes_the_candidate_as_the_integer_it_advertises(client):
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/branch"]
    candidate = next(p for p in info["parameters"] if p["parameter_name"] == "candidate")
    assert candidate["type"]["type"] == "number"
    text, records = client.predict(prompt="a red circle", step=1, candidate=2, max_new_tokens=4, seed=0,
                                   api_name="/branch")[:2]
    assert text and records[0]["branched"]


def test_too_few_values_are_refused_naming_the_parameters(bundled):
    url = bundled[0].local_url
    reply = call(url, "image", ["a red circle", "", 5])
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert "8 values expected (prompt, negative_prompt, num_inference_steps" in detail and "missing guidance_scale" in detail
    assert "object at 0x" not in reply.text
    assert call(url, "understand", ["Lovely.", "sentiment"]).status_code == 200  # still serving


@pytest.mark.parametrize("data, field", [
    ([float("nan"), 1, 1, 1, 1], "prompt"), (["a", None, 1, 1, 1], "step"), (["a", "3", 2, 4, 0], "step"),
])
def test_every_named_endpoint_checks_its_inputs_before_the_queue(bundled, data, field):
    reply = httpx.post(f"{bundled[0].local_url}gradio_api/call/branch",
                       content=json.dumps({"data": data}, allow_nan=True), headers={"content-type": "application/json"})
    assert reply.status_code == 422
    bad = [d for d in reply.json()["detail"] if not d["is_valid"]]
    assert [d["parameter_name"] for d in bad] == [field]


def test_draw_only_events_are_not_in_the_api(client):
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert "/compare_step" not in named and not any("replay" in name or "lambda" in name for name in named)
    assert not [name for name in named if name.rstrip("0123456789").endswith("_")]  # no name taken twice ("/cost_1")


def workers() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name in ("model-worker", "diffusion-batcher") and t.is_alive()]


@pytest.mark.parametrize("endpoint, args, wait_s", [
    ("/understand", dict(text=" ".join(f"Name{i} met Person{i} in Paris." for i in range(40)), task="entities"), 0.0),
    ("/understand", dict(text=" ".join(f"Name{i} met Person{i} in Paris." for i in range(40)), task="entities"), 1.0),
    ("/text", dict(prompt="Count to a thousand.", system_prompt="", max_new_tokens=2000, temperature=1.0, top_p=1.0,
                   seed=0), 1.0),
    ("/chat", dict(prompt="Count to a thousand.", history=[{"role": "user", "content": "word " * 900},
                                                           {"role": "assistant", "content": "ok"}] * 8,
                   system_prompt="", max_new_tokens=2000, temperature=1.0, top_p=1.0, seed=0), 0.2),
    ("/image", dict(prompt="a red circle", negative_prompt="", num_inference_steps=100, guidance_scale=3.0, seed=0,
                    width=64, height=64), 1.0),
    ("/text_diffusion", dict(prompt="a red circle", gen_length=48, num_inference_steps=48, seed=0), 0.0),
])
def test_a_cancelled_request_stops_its_work(client, endpoint, args, wait_s):
    """Cancelled at once (before its first step, while its prompt is read) or a moment later: the model's worker
    is gone at its next step (an entity typed, a token, a denoising step), not after the request's whole work (a
    minute or more for each of these)."""
    t = time.perf_counter()
    while workers() and time.perf_counter() - t < 60:  # whatever an earlier test left finishing
        time.sleep(0.1)
    job = client.submit(**args, api_name=endpoint)
    time.sleep(wait_s)
    t = time.perf_counter()
    job.cancel()
    answered_s = time.perf_counter() - t
    t = time.perf_counter()
    while workers() and time.perf_counter() - t < 30:
        time.sleep(0.1)
    assert not workers(), (endpoint, [t.name for t in workers()], f"/cancel answered in {answered_s:.1f} s")
