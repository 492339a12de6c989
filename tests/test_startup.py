"""A request sent at the first instant the UI answers is served, whatever the warm-up is importing meanwhile.

The warm-up imports torch and diffusers in a thread once the UI is up; a request's worker may need torch at that
very moment. Each start here sends one request to each kind of model (text, image, text diffusion) as soon as
HTTP 200 comes, all at once, and every one must be answered.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

REQUESTS = {
    "/text": dict(prompt="Say hi.", system_prompt="", max_new_tokens=4, temperature=0.0, top_p=1.0, seed=0),
    "/image": dict(prompt="a red circle", negative_prompt="", num_inference_steps=2, guidance_scale=3.0, seed=0,
                   width=64, height=64),
    "/text_diffusion": dict(prompt="a red circle", gen_length=24, num_inference_steps=4, seed=0),
}


def start(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PRESET": "bundled"})


def wait_for_ui(url: str, proc: subprocess.Popen, limit_s: float = 120) -> None:
    t = time.perf_counter()
    while time.perf_counter() - t < limit_s:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.01)
    raise AssertionError("the UI did not answer")


@pytest.mark.parametrize("run", range(10))
def test_requests_at_the_first_instant_are_all_answered(run):
    from gradio_client import Client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    proc = start(port)
    try:
        wait_for_ui(url, proc)
        client = Client(url, verbose=False)
        with ThreadPoolExecutor(len(REQUESTS)) as pool:
            jobs = {name: pool.submit(client.predict, **args, api_name=name) for name, args in REQUESTS.items()}
            answers = {name: job.result(timeout=120) for name, job in jobs.items()}
        assert answers["/text"][0].strip()
        assert os.path.exists(answers["/image"][0])
        assert answers["/text_diffusion"][0].strip()
    finally:
        proc.kill()
        proc.wait()
