"""The app as a user's program sees it: gradio_client against the launched demo, bundled preset, offline."""

import csv
import json
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError
from PIL import Image

from pipelines.base import final

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"


def test_text_streams_and_returns_text(client):
    job = client.submit(prompt="Name a colour.", system_prompt="You are a helpful assistant.", max_new_tokens=12,
                        temperature=0.0, top_p=1.0, seed=0, api_name="/text")
    outputs = list(job)
    text = job.result()[0]
    assert isinstance(text, str) and text.strip()
    assert len(outputs) >= 2  # intermediate token updates came before the final result


def test_text_is_reproducible_with_a_seed(client):
    args = dict(prompt="Tell me a story about a cat.", system_prompt="", max_new_tokens=10, temperature=1.0, top_p=0.9,
                seed=42, api_name="/text")
    assert client.predict(**args)[0] == client.predict(**args)[0]


def chat_text(message: dict) -> str:
    """A gr.Chatbot message's text, however the client received its content."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def test_chat_keeps_the_conversation_and_answers_in_it(client):
    settings = dict(system_prompt="You are a helpful assistant.", max_new_tokens=16, temperature=0.0, top_p=1.0, seed=0,
                    api_name="/chat")
    job = client.submit(prompt="The secret word is banana.", history=[], **settings)
    updates = list(job)
    chat, history = job.result()[0], job.result()[-1]
    assert len(updates) >= 3  # the message moved into the chat, then the reply grew token by token
    assert updates[0][1] == ""  # the message box is emptied as the message moves into the chat
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert chat_text(chat[0]) == "The secret word is banana." and chat_text(chat[1]).strip()
    # The last output is the conversation as /chat takes it back: plain {"role", "content": text} messages.
    assert history == [{"role": "user", "content": "The secret word is banana."},
                       {"role": "assistant", "content": chat_text(chat[1])}]
    chat2 = client.predict(prompt="What is the secret word?", history=history, **settings)[0]
    assert [m["role"] for m in chat2] == ["user", "assistant"] * 2
    assert [chat_text(m) for m in chat2[:2]] == [chat_text(m) for m in chat]  # the earlier turns are kept as they were
    # Bundled SmolLM2-135M, greedy: it recalled what the first turn said in 3 of 5 such probes with the history
    # (banana, Rex, 42; not a name or a colour), and in none without it.
    assert "banana" in chat_text(chat2[3])
    assert "banana" not in chat_text(client.predict(prompt="What is the secret word?", history=[], **settings)[0][1])


def test_understand_sentiment_returns_label_and_probabilities(client):
    result = client.predict(text="I loved every minute of this wonderful film.", task="sentiment", api_name="/understand")[0]
    result = json.loads(result) if isinstance(result, str) else result
    assert result["label"] == "positive"
    assert set(result["probabilities"]) == {"positive", "negative"}
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-3


def test_understand_other_tasks(client):
    ents = client.predict(text="Marie Curie worked in Paris.", task="entities", api_name="/understand")[0]
    names = {e["text"] for e in ents["entities"]}
    assert {"Marie Curie", "Paris"} <= names
    kws = client.predict(text="Diffusion models turn noise into images step by step.", task="keywords",
                         api_name="/understand")[0]
    assert kws["keywords"] and all(k["keyword"] not in ("into", "by") for k in kws["keywords"])
    summary = client.predict(text="The meeting moved from Monday to Friday because the manager was ill. Everyone "
                             "must bring the quarterly report.", task="summary", api_name="/understand")[0]
    assert summary["summary"].strip()


def test_translate_returns_text(client):
    out = client.predict(text="Good morning.", source_language="English", target_language="French", api_name="/translate")[0]
    assert isinstance(out, str) and out.strip()


@pytest.mark.parametrize("args, field", [
    (dict(text="hello", source_language="English", target_language="Klingon", api_name="/translate"), "target_language"),
    (dict(text="   ", task="sentiment", api_name="/understand"), "text"),
    (dict(text="fine", task="poetry", api_name="/understand"), "task"),  # named, with the valid tasks listed
    (dict(prompt="", system_prompt="", max_new_tokens=5, temperature=0.5, top_p=0.9, seed=0, api_name="/text"), "prompt"),
    (dict(prompt="hi", system_prompt="", max_new_tokens=5, temperature=9.0, top_p=0.9, seed=0, api_name="/text"),
     "temperature"),
    (dict(prompt="x" * 5000, system_prompt="", max_new_tokens=5, temperature=0.5, top_p=0.9, seed=0, api_name="/text"),
     "prompt"),
    (dict(prompt="a red circle", negative_prompt="", num_inference_steps=500, guidance_scale=4.0, seed=0, width=64,
          height=64, api_name="/image"), "num_inference_steps"),
])
def test_bad_input_gets_a_clear_error_and_the_server_keeps_serving(client, args, field):
    with pytest.raises((AppError, ValidationError), match=field):
        client.predict(**args)
    assert client.predict(text="Lovely.", task="sentiment", api_name="/understand")[0]["label"]


def test_image_endpoint(client, bundled):
    _, pipelines = bundled
    if pipelines["image"].missing:
        with pytest.raises(AppError, match="not in this checkout"):
            client.predict(prompt="a red circle", negative_prompt="", num_inference_steps=5, guidance_scale=4.0, seed=1,
                           width=64, height=64, api_name="/image")
        return
    path = client.predict(prompt="a large red circle in the center on a blue background", negative_prompt="",
                          num_inference_steps=10, guidance_scale=4.0, seed=1, width=64, height=64, api_name="/image")[0]
    image = Image.open(path)
    assert image.size == (64, 64)


def test_the_image_streams_each_preview_once_and_its_gallery_names_those_files(bundled):
    """Over raw HTTP, as a browser reads it: every step's preview is its own PNG file, sent once; the gallery at the
    end names files the stream already sent (the browser has them), not new copies of the same pictures."""
    import io
    import json

    import httpx

    demo, pipelines = bundled
    if pipelines["image"].missing:
        pytest.skip("the bundled image model is not in this checkout")
    url = f"{demo.local_url}gradio_api/call/image"
    data = ["a large red circle in the center on a blue background", "", 12, 4.0, 3, 64, 64, True]
    with httpx.Client(timeout=120) as http:
        event = http.post(url, json={"data": data}).json()["event_id"]
        updates, kind = [], None
        with http.stream("GET", f"{url}/{event}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind in ("generating", "complete"):
                    updates.append(json.loads(line[5:]))
        image, progress, gallery = updates[-1]
        previews = [u[0]["url"] for u in updates[:-2] if u[0]]  # the live image until the final image replaces it
        assert len(previews) >= 2 and len(set(previews)) == len(previews)  # one file per preview, each sent once
        assert gallery and {g["image"]["url"] for g in gallery} <= set(previews)
        assert image["url"] not in previews
        for file_url in previews + [image["url"]]:
            assert Image.open(io.BytesIO(http.get(file_url).content)).size == (64, 64)


@pytest.mark.parametrize("task, args", [
    ("audio", dict(prompt="a high tone", negative_prompt="", duration_s=2.0, num_inference_steps=5, guidance_scale=3.0,
                   seed=0)),
    ("video", dict(prompt="a red circle moving right", negative_prompt="", num_frames=8, num_inference_steps=5,
                   guidance_scale=4.0, seed=0)),
])
def test_diffusion_endpoints_work_or_name_the_missing_model(client, bundled, task, args):
    _, pipelines = bundled
    if pipelines[task].missing:
        with pytest.raises(AppError, match=f"bundled {task} model is not in this checkout"):
            client.predict(**args, api_name=f"/{task}")
    else:
        assert Path(client.predict(**args, api_name=f"/{task}")[0]).exists()


def test_api_lists_the_documented_endpoints_and_parameters(client):
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    expected = {
        "/image": ["prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "seed", "width", "height"],
        "/audio": ["prompt", "negative_prompt", "duration_s", "num_inference_steps", "guidance_scale", "seed"],
        "/video": ["prompt", "negative_prompt", "num_frames", "num_inference_steps", "guidance_scale", "seed"],
        "/text": ["prompt", "system_prompt", "max_new_tokens", "temperature", "top_p", "seed"],
        "/chat": ["prompt", "history", "system_prompt", "max_new_tokens", "temperature", "top_p", "seed"],
        "/understand": ["text", "task"],
        "/translate": ["text", "source_language", "target_language"],
        "/text_diffusion": ["prompt", "gen_length", "num_inference_steps", "seed"],
        "/compare": ["prompt", "num_inference_steps", "max_new_tokens", "seed"],
        "/branch": ["prompt", "step", "candidate", "max_new_tokens", "seed"],
        "/switch": ["prompt", "prompt_after", "switch_step", "num_inference_steps", "seed"],
    }
    for name, params in expected.items():
        assert name in info, f"{name} missing from the API"
        names = [p["parameter_name"] for p in info[name]["parameters"]]
        assert names[:len(params)] == params


def test_sentiment_accuracy_on_our_labelled_set(bundled):
    """>= 90 % on 44 hand-written sentences (tests/data/sentiment.tsv), from label likelihoods."""
    _, pipelines = bundled
    rows = list(csv.DictReader(open(DATA / "sentiment.tsv"), delimiter="\t"))
    assert len(rows) >= 40
    correct = sum(pipelines["understand"].sentiment(r["text"])["label"] == r["label"] for r in rows)
    assert correct / len(rows) >= 0.9, f"{correct}/{len(rows)}"


def test_sentiment_accuracy_on_sentences_no_tuning_ever_saw(bundled):
    """>= 90 % on 62 sentences written for this test and kept out of all tuning (tests/data/sentiment_holdout.tsv:
    reviews, everyday messages, negation, mixed domains). Measured 56/62 = 0.90 (the tuned set: 42/44 = 0.95)."""
    _, pipelines = bundled
    rows = list(csv.DictReader(open(DATA / "sentiment_holdout.tsv"), delimiter="\t"))
    assert len(rows) >= 60 and {r["domain"] for r in rows} == {"review", "message", "negation", "mixed"}
    wrong = [r["text"] for r in rows if pipelines["understand"].sentiment(r["text"])["label"] != r["label"]]
    assert 1 - len(wrong) / len(rows) >= 0.9, wrong


def test_translation_covers_the_languages(bundled):
    _, pipelines = bundled
    for target in ("French", "Spanish", "German", "Italian", "Portuguese", "Chinese"):
        out = final(pipelines["translate"].stream("Thank you very much.", "English", target, max_new_tokens=16))
        assert out.text.strip() and out.text.strip() != "Thank you very much."


def test_text_diffusion_endpoint_returns_the_text_and_its_steps(client, bundled):
    if bundled[1]["text_diffusion"].missing:
        with pytest.raises(AppError, match="not in this checkout"):
            client.predict(prompt="a red circle", gen_length=32, num_inference_steps=16, seed=0, api_name="/text_diffusion")
        return
    out = client.predict(prompt="a small red circle on the left on a blue background", gen_length=32,
                         num_inference_steps=16, seed=0, api_name="/text_diffusion")
    text, steps = out[0], out[4]["steps"]  # (text, canvas, progress, run numbers, records, ...)
    assert isinstance(text, str) and "circle" in text
    assert [s["step"] for s in steps] == list(range(1, 17)) and steps[-1]["masks_left"] == 0
    assert sum(len(s["committed"]) for s in steps) == 32
    assert {"position", "token", "probability"} == set(steps[0]["committed"][0]) and "seconds" in steps[0]
    with pytest.raises(ValidationError, match="gen_length"):  # refused before the queue, by name
        client.predict(prompt="a red circle", gen_length=30, num_inference_steps=16, seed=0, api_name="/text_diffusion")


@pytest.fixture(scope="module")
def comparison(client, bundled):
    if bundled[1]["image"].missing:
        pytest.skip("the bundled image model is not in this checkout")
    args = dict(prompt="a small yellow triangle at the top on a black background", max_new_tokens=12, seed=4)
    return args, client.predict(num_inference_steps=10, **args, api_name="/compare")[2]


def test_compare_records_all_three_lanes(comparison, bundled):
    records = comparison[1]
    assert len(records["diffusion"]) == 10 and 1 <= len(records["llm"]) <= 12
    if not bundled[1]["text_diffusion"].missing:
        td = records["text_diffusion"]
        assert td and {"step", "committed", "seconds"} <= set(td[0])
        assert {"position", "token", "probability"} == set(td[0]["committed"][0])


@pytest.mark.parametrize("step, candidate", [(2, 2), (4, 3)])
def test_branch_keeps_what_came_before_and_takes_the_chosen_candidate(client, comparison, step, candidate):
    args, records = comparison
    llm = records["llm"]
    text, branched = client.predict(step=step, candidate=candidate, **args, api_name="/branch")[:2]
    assert [r["token"] for r in branched[:step - 1]] == [r["token"] for r in llm[:step - 1]]
    assert branched[step - 1]["token"] == llm[step - 1]["candidates"][candidate - 1]["token"]
    assert isinstance(text, str) and text.strip()
    with pytest.raises(ValidationError, match="candidate"):
        client.predict(step=1, candidate=7, **args, api_name="/branch")


def test_switching_early_takes_the_new_colours_late_keeps_the_old(client, bundled):
    from shapes import describe

    if bundled[1]["image"].missing:
        pytest.skip("the bundled image model is not in this checkout")
    before = "a large red circle in the center on a blue background"
    after = "a large yellow circle in the center on a green background"
    seen = {}
    for k in (2, 23):
        path = client.predict(prompt=before, prompt_after=after, switch_step=k, num_inference_steps=25, seed=8,
                              api_name="/switch")
        seen[k] = describe(Image.open(path))
    assert (seen[2]["colour"], seen[2]["background"]) == ("yellow", "green"), seen
    assert (seen[23]["colour"], seen[23]["background"]) == ("red", "blue"), seen


def test_mcp_serves_the_endpoints_as_tools(bundled):
    """`python app.py --mcp`: an MCP client (the `mcp` SDK, over streamable HTTP) lists the app's endpoints as tools."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from app import build_app
    from demo.blocks import launch_kwargs
    from settings import Settings

    demo, _ = build_app(Settings(preset="bundled", device="cpu", mcp=True))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True, mcp_server=True,
                **launch_kwargs(demo))

    async def tools():
        async with streamablehttp_client(f"{demo.local_url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return {t.name: t for t in (await session.list_tools()).tools}

    try:
        listed = asyncio.run(tools())
    finally:
        demo.close()
    for name in ("image", "audio", "video", "text", "chat", "text_diffusion", "understand", "translate", "compare",
                 "branch", "switch"):
        assert name in listed, sorted(listed)  # each tool is named after its endpoint
        assert listed[name].description.strip(), name  # and says what it does
    assert {"prompt", "seed"} <= set(listed["image"].inputSchema["properties"])
    assert listed["image"].description.startswith("Image diffusion")


@pytest.mark.parametrize("endpoint, args, field", [
    ("/image", dict(seed=-1), "seed"), ("/image", dict(num_inference_steps=None), "num_inference_steps"),
    ("/image", dict(num_inference_steps="ten"), "num_inference_steps"), ("/image", dict(prompt={"a": 1}), "prompt"),
    ("/image", dict(prompt=5), "prompt"), ("/image", dict(width=70), "width"),
    ("/audio", dict(duration_s=None), "duration_s"), ("/video", dict(num_frames=99), "num_frames"),
    ("/text", dict(top_p="abc"), "top_p"), ("/text", dict(seed=None), "seed"),
    ("/text_diffusion", dict(gen_length=30), "gen_length"), ("/understand", dict(task="poetry"), "task"),
    ("/translate", dict(target_language="Klingon"), "target_language"), ("/compare", dict(max_new_tokens=0), "max_new_tokens"),
    ("/branch", dict(candidate=6), "candidate"), ("/switch", dict(switch_step=30), "switch_step"),
])
def test_every_bad_value_is_refused_at_once_naming_its_parameter(client, endpoint, args, field):
    good = {
        "/image": dict(prompt="a red circle", negative_prompt="", num_inference_steps=5, guidance_scale=3.0, seed=1, width=64,
                       height=64),
        "/audio": dict(prompt="a bell", negative_prompt="", duration_s=2.0, num_inference_steps=5, guidance_scale=3.0, seed=1),
        "/video": dict(prompt="a red circle", negative_prompt="", num_frames=8, num_inference_steps=5, guidance_scale=4.0,
                       seed=1),
        "/text": dict(prompt="hi", system_prompt="", max_new_tokens=4, temperature=0.5, top_p=0.9, seed=0),
        "/text_diffusion": dict(prompt="a red circle", gen_length=32, num_inference_steps=16, seed=0),
        "/understand": dict(text="fine", task="sentiment"),
        "/translate": dict(text="hello", source_language="English", target_language="French"),
        "/compare": dict(prompt="a red circle", num_inference_steps=5, max_new_tokens=4, seed=0),
        "/branch": dict(prompt="a red circle", step=1, candidate=2, max_new_tokens=4, seed=0),
        "/switch": dict(prompt="a red circle", prompt_after="a blue square", switch_step=2, num_inference_steps=25, seed=0),
    }[endpoint]
    with pytest.raises(ValidationError, match=rf"- {field}: .*`{field}`"):
        client.predict(**{**good, **args}, api_name=endpoint)


def test_bad_input_does_not_wait_for_the_queue(client, bundled):
    """A comparison holds the models; a bad request behind it is still refused in well under a second."""
    import time

    long = client.submit(prompt="a red circle", num_inference_steps=50, max_new_tokens=64, seed=0, api_name="/compare")
    time.sleep(1.0)
    start = time.perf_counter()
    with pytest.raises(ValidationError, match="seed"):
        client.predict(prompt="a red circle", num_inference_steps=50, max_new_tokens=64, seed=-1, api_name="/compare")
    assert time.perf_counter() - start < 1.0
    long.cancel()


def test_text_that_is_not_text_is_refused_by_name_over_raw_http(bundled):
    """What gradio_client cannot even send: a lone surrogate, a NaN (raw JSON, as any HTTP client may)."""
    import httpx

    url = f"{bundled[0].local_url}gradio_api/call/image"
    for body, field in (('["a \\ud800 circle", "", 5, 3.0, 1, 64, 64, true]', "prompt"),
                        ('["a red circle", "", NaN, 3.0, 1, 64, 64, true]', "num_inference_steps")):
        reply = httpx.post(url, content='{"data": ' + body + "}", headers={"content-type": "application/json"})
        assert reply.status_code == 422
        bad = [d for d in reply.json()["detail"] if not d["is_valid"]]
        assert [d["parameter_name"] for d in bad] == [field] and f"`{field}`" in bad[0]["message"]


def test_a_full_queue_refuses_at_once(tiny_sd, tiny_llm):
    """--max-queue: more waiting requests than that are refused straight away, not queued."""
    import time

    from gradio_client.utils import QueueError

    from app import build_app
    from demo.blocks import launch_kwargs
    from settings import Settings, parse_settings

    assert parse_settings(["--max-queue", "3"]).max_queue == 3 and parse_settings([], env={"MAX_QUEUE": "5"}).max_queue == 5
    demo, pipelines = build_app(Settings(device="cpu", overrides={"image_model": tiny_sd, "text_model": tiny_llm}, max_queue=1))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True, **launch_kwargs(demo))
    jobs = []
    try:
        client = Client(demo.local_url, verbose=False)
        args = dict(prompt="hello", system_prompt="", max_new_tokens=200, temperature=1.0, top_p=1.0, seed=0, api_name="/text")
        with pipelines["text"].lock:  # the model busy: however soon a reply would end, the first stays running
            from gradio_client.utils import Status

            jobs = [client.submit(**args)]
            deadline = time.perf_counter() + 30
            while jobs[0].status().code not in (Status.PROCESSING, Status.ITERATING) and time.perf_counter() < deadline:
                time.sleep(0.05)  # running, not waiting: else the second would find the queue full
            jobs.append(client.submit(**args))  # one running, one waiting: the queue is full
            time.sleep(1.0)
            start = time.perf_counter()
            with pytest.raises(QueueError, match="full"):
                client.submit(**args).result(timeout=10)  # a timeout, not a hang, if it were queued
            assert time.perf_counter() - start < 2.0
    finally:
        for job in jobs:
            job.cancel()
        demo.close()


def test_thirty_wrong_passwords_lock_the_login():
    """--auth: after five wrong passwords a minute for a name from an address, that pair is refused for a while, saying
    so (Gradio's tuple auth answered all 30 guesses at once); other addresses are not (test_registry.py)."""
    import httpx

    from app import Login, build_app
    from demo.blocks import launch_kwargs
    from settings import Settings

    demo, _ = build_app(Settings(device="cpu"))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True,
                auth=Login("me", "secret"), **launch_kwargs(demo))
    try:
        login = lambda password: httpx.post(f"{demo.local_url}login", data={"username": "me", "password": password})  # noqa: E731
        assert login("secret").status_code == 200
        assert [login(f"guess{i}").status_code for i in range(7)] == [400] * 5 + [429] * 2
        refused = login("secret")
        assert refused.status_code == 429 and "Too many attempts; try again in" in refused.json()["detail"]
    finally:
        demo.close()


def test_the_app_sends_no_telemetry_unless_asked(bundled):
    """Gradio's telemetry and version check are off (settings.analytics): the app runs offline by default."""
    assert bundled[0].analytics_enabled is False


def test_the_examples_cache_is_named_after_what_makes_the_results():
    """app.examples_cache: the same app gets the same folder (the cached results are kept across starts); another
    preset or model override gets another (never an older app's results)."""
    from app import examples_cache
    from settings import Settings

    bundled = examples_cache(Settings(preset="bundled"))
    assert bundled == examples_cache(Settings(preset="bundled"))
    assert bundled.startswith(Settings().tuning.cache_dir)
    others = {examples_cache(Settings(preset="small")), examples_cache(Settings(overrides={"image_model": "a/b"}))}
    assert bundled not in others and len(others) == 2
