"""The app as a user's program sees it: gradio_client against the launched demo, bundled preset, offline."""

import csv
import json
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.base import final

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
    (dict(text="fine", task="poetry", api_name="/understand"), "poetry"),  # the Radio refuses it, listing the choices
    (dict(prompt="", system_prompt="", max_new_tokens=5, temperature=0.5, top_p=0.9, seed=0, api_name="/text"), "prompt"),
    (dict(prompt="hi", system_prompt="", max_new_tokens=5, temperature=9.0, top_p=0.9, seed=0, api_name="/text"),
     "temperature"),
    (dict(prompt="x" * 5000, system_prompt="", max_new_tokens=5, temperature=0.5, top_p=0.9, seed=0, api_name="/text"),
     "prompt"),
    (dict(prompt="a red circle", negative_prompt="", num_inference_steps=500, guidance_scale=4.0, seed=0, width=64,
          height=64, api_name="/image"), "num_inference_steps"),
])
def test_bad_input_gets_a_clear_error_and_the_server_keeps_serving(client, args, field):
    with pytest.raises(AppError, match=field):
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
        "/understand": ["text", "task"],
        "/translate": ["text", "source_language", "target_language"],
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
    correct = sum(pipelines["text"].sentiment(r["text"])["label"] == r["label"] for r in rows)
    assert correct / len(rows) >= 0.9, f"{correct}/{len(rows)}"


def test_translation_covers_the_languages(bundled):
    _, pipelines = bundled
    for target in ("French", "Spanish", "German", "Italian", "Portuguese", "Chinese"):
        out = final(pipelines["text"].translate_stream("Thank you very much.", "English", target, max_new_tokens=16))
        assert out.text.strip() and out.text.strip() != "Thank you very much."
