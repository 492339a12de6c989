"""Benchmarks, reported as ratios measured in one run (machines here are noisy):

1. our image, audio and video pipelines (step stream, previews off / on) vs the raw diffusers call, same
   bundled model and settings; the raw seconds are the bundled models' inference times (25 steps, 64x64
   image; 25 steps, 2-second clip with the bundled vocoder; 8 frames at 64x64, the registry's steps);
2. the bundled SmolLM2 on transformers and on llama.cpp: load, first token, tokens/s of our stream vs
   the engine's own call; on llama.cpp, a chat's fourth turn to its first token with the conversation's cells kept
   (prefix caching) and read whole;
3. our text-diffusion stream vs the raw `LLaDA2Pipeline` call (a 32-token description in 16 steps) on the
   bundled model; its seconds are the bundled text-diffusion inference time;
4. the app as users meet it (`bench_server`): seconds to the UI answering, to the first /text reply,
   8 concurrent /text, /chat and /image against 8 in turn (each as a browser makes it: `browser_like`; the median
   ratio of 3 alternated rounds), RSS with
   every model used, and Gradio's own milliseconds per streamed update with gr.skip() and with values.

    python bench/bench.py [--repeats 5] [--skip-audio] [--skip-video] [--skip-llm] [--skip-text-diffusion]
                          [--skip-server]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.audio import AudioPipeline  # noqa: E402
from pipelines.base import Tuning, final  # noqa: E402
from pipelines.image import ImagePipeline  # noqa: E402
from pipelines.presets import MODELS, get_spec  # noqa: E402
from pipelines.specs import missing_message  # noqa: E402
from pipelines.text import TextPipeline, has_llama_cpp  # noqa: E402

TUNING = Tuning()  # as the app runs by default (settings.py)
from pipelines.text_diffusion import TextDiffusionPipeline  # noqa: E402
from pipelines.video import VideoPipeline  # noqa: E402

# Issue #16's measurements on the 2-core dev machine before llama.cpp, lazy imports and batching (bundled preset):
# what `make bench` compares its own numbers with.
BEFORE = {"seconds_to_ui": 8.2, "first_text_reply_s": 18.0, "llm_tokens_per_s": 15.5, "text_8_throughput_ratio": 1.00,
          "peak_rss_mb": 1890}


def against_before(results: dict) -> dict:
    """This run's headline numbers over BEFORE's (for times, BEFORE over this run: above 1 is better)."""
    server, llm = results.get("server", {}), results.get("llm", {})
    ratios = {}
    if "seconds_to_ui" in server:
        ratios["startup_speedup"] = BEFORE["seconds_to_ui"] / server["seconds_to_ui"]
        ratios["first_text_reply_speedup"] = BEFORE["first_text_reply_s"] / server["first_text_reply_s"]
        ratios["text_8_throughput_ratio"] = server["text_8"]["throughput_ratio"] / BEFORE["text_8_throughput_ratio"]
        ratios["peak_rss_over_before"] = server["memory_mb_end"]["peak_rss"] / BEFORE["peak_rss_mb"]
    if "tokens_per_s_ours" in llm.get("llama.cpp", {}):
        ratios["llm_tokens_per_s_over_before"] = llm["llama.cpp"]["tokens_per_s_ours"] / BEFORE["llm_tokens_per_s"]
    return ratios


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, run in turn (a, b, c, a, b, c, ...) so drift hits all alike."""
    times = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def raw_vs_ours(raw, stream, repeats: int) -> dict:
    """Seconds of the raw call and of our stream with previews off / on, and our time over the raw one."""
    t = interleaved({"raw": raw, "ours_previews_off": stream(False), "ours_previews_on": stream(True)}, repeats)
    return {"seconds": t, "ratio_previews_off": t["ours_previews_off"] / t["raw"],
            "ratio_previews_on": t["ours_previews_on"] / t["raw"]}


def bench_image(repeats: int) -> dict:
    spec = get_spec("image", "bundled")
    if missing_message("image", spec):
        sys.exit("the bundled image model is missing: train it first (training/train_image.py)")
    ours = ImagePipeline(spec, device="cpu")
    pipe = ours.pipe
    kw = dict(prompt="a large red circle in the center on a blue background", num_inference_steps=25,
              guidance_scale=4.0, width=64, height=64)

    def raw():
        pipe(**kw, generator=torch.Generator().manual_seed(0))

    def stream(preview):
        return lambda: final(ours.stream(**kw, seed=0, preview=preview))

    return {"model": spec.model_id, "settings": "25 steps, 64x64, CFG 4", **raw_vs_ours(raw, stream, repeats)}


def bench_audio(repeats: int) -> dict:
    spec = get_spec("audio", "bundled")
    if missing_message("audio", spec):
        return {"skipped": "the bundled audio model is missing (training/train_audio.py)"}
    ours = AudioPipeline(spec, device="cpu")
    pipe = ours.pipe
    kw = dict(prompt="a fast drum beat and a rising siren", num_inference_steps=25, guidance_scale=3.0)

    def raw():
        pipe(**kw, audio_length_in_s=2.0, generator=torch.Generator().manual_seed(0))

    def stream(preview):
        return lambda: final(ours.stream(**kw, duration_s=2.0, seed=0, preview=preview))

    return {"model": spec.model_id, "settings": "25 steps, 2 s clip, CFG 3, the bundled vocoder",
            **raw_vs_ours(raw, stream, repeats)}


def raw_text_diffusion(ours: TextDiffusionPipeline, prompt: str, gen_length: int, steps: int,
                       threads: int | None = None) -> Callable[[], None]:
    """The `LLaDA2Pipeline` call our stream makes (greedy, the whole length one block), without the step callback and
    the records: the prompt's tokens made beforehand. `threads`: torch's intra-op threads, set at each call."""
    pipe = ours.pipe
    ids, mask = ours.prompt_ids(pipe.tokenizer, prompt, gen_length)

    def raw() -> None:
        if threads:
            torch.set_num_threads(threads)
        pipe(input_ids=ids, attention_mask=mask, use_chat_template=False, gen_length=gen_length, block_length=gen_length,
             num_inference_steps=steps, temperature=0.0, sampling_method="greedy", threshold=1.0, editing_threshold=None,
             eos_early_stop=False, output_type="seq")

    return raw


def bench_text_diffusion(repeats: int) -> dict:
    spec = get_spec("text_diffusion", "bundled")
    if missing_message("text_diffusion", spec):
        return {"skipped": "the bundled text-diffusion model is missing (training/train_text_diffusion.py)"}
    ours = TextDiffusionPipeline(spec, device="cpu")
    prompt = "a small red circle on the left on a blue background"
    raw = raw_text_diffusion(ours, prompt, 32, 16)
    t = interleaved({"raw": raw, "ours": lambda: final(ours.stream(prompt, 32, 16, 0, 0.0))}, repeats)
    return {"model": spec.model_id, "settings": "32 tokens, 16 steps, greedy", "seconds": t,
            "ratio": t["ours"] / t["raw"], "tokens_per_second": 32 / t["ours"]}


def bench_video(repeats: int) -> dict:
    spec = get_spec("video", "bundled")
    if missing_message("video", spec):
        return {"skipped": "the bundled video model is missing (training/train_video.py)"}
    ours = VideoPipeline(spec, device="cpu")
    pipe = ours.pipe
    d = spec.defaults
    kw = dict(prompt="a red circle moving right on a blue background", num_frames=d["num_frames"],
              num_inference_steps=d["num_inference_steps"], guidance_scale=d["guidance_scale"])

    def raw():  # the same pipeline call our stream makes (per-frame prompts for the bundled model)
        pipe(**{**kw, "prompt": ours.pipeline_prompt(pipe, kw["prompt"], kw["num_frames"])}, width=d["width"],
             height=d["height"], generator=torch.Generator().manual_seed(0), output_type="pil")

    def stream(preview):
        return lambda: final(ours.stream(**kw, seed=0, preview=preview))

    return {"model": f"{spec.model_id} + {spec.motion_adapter}",
            "settings": f"{d['num_frames']} frames, {d['width']}x{d['height']}, {d['num_inference_steps']} steps, "
                        f"CFG {d['guidance_scale']}", **raw_vs_ours(raw, stream, repeats)}


def bench_llm(repeats: int, tokens: int = 64) -> dict:
    """The bundled SmolLM2 (one Q4_1 GGUF file) on each engine: seconds to load, seconds to the first token of a
    fresh pipeline, and tokens/s of our stream (top-5 candidates on every step) against the engine's own call
    (greedy, no candidates), `tokens` tokens each. "transformers" dequantises the GGUF to float32 (the path
    before llama.cpp, and the one without llama-cpp-python); "llama.cpp" runs it as `Tuning.llama_cpp_weights` says (re-rounded
    to Q8_0 unless "shipped"; bench/llm_weights.py compares the two)."""
    prompt = "Write a long story about the sea, the wind and a lighthouse keeper."
    results = {"model": "SmolLM2-135M-Instruct (Q4_1 GGUF)", "llama_cpp_weights": TUNING.llama_cpp_weights, "tokens": tokens,
               "threads": TUNING.torch_threads}
    for name in ("transformers", "llama.cpp"):
        if name == "llama.cpp" and not has_llama_cpp():
            results[name] = {"skipped": "llama-cpp-python is not installed"}
            continue
        t = time.perf_counter()
        ours = TextPipeline(MODELS["text"]["bundled"], device="cpu", tuning=Tuning(llm_engine=name))
        ours.load()
        load_s = time.perf_counter() - t
        first = next(iter(ours.stream(prompt, max_new_tokens=1, temperature=0.0)))
        first_s = time.perf_counter() - t
        assert first.index == 1
        engine, ids = ours.engine, ours.chat_ids(prompt)
        if name == "transformers":
            model, tok = engine.model, engine.tokenizer

            def raw(ids=ids, model=model, tok=tok):
                x = torch.tensor([ids])
                with torch.no_grad():
                    model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=tokens, min_new_tokens=tokens,
                                   do_sample=False, pad_token_id=tok.eos_token_id)
        else:
            def raw(engine=engine, ids=ids):
                for i, _ in enumerate(engine.llm.generate(ids, top_k=1, temp=0.0, reset=True), 1):
                    if i == tokens:
                        break

        def stream(ours=ours):
            return final(ours.stream(prompt, max_new_tokens=tokens, temperature=0.0, seed=0))

        n = len(stream().steps)  # our stream stops at end-of-text: the prompt asks for more than `tokens`
        t = interleaved({"raw": raw, "ours": stream}, repeats)
        results[name] = {"load_s": load_s, "first_token_s": first_s, "seconds": t, "ratio": t["ours"] / t["raw"],
                         "tokens_per_s_raw": tokens / t["raw"], "tokens_per_s_ours": n / t["ours"], "tokens_ours": n}
        if name == "llama.cpp" and ours.batcher is not None:
            results["chat_turn"] = bench_chat_turn(ours, repeats)
    if "tokens_per_s_ours" in results.get("llama.cpp", {}):
        results["llama_cpp_over_transformers"] = (results["llama.cpp"]["tokens_per_s_ours"]
                                                  / results["transformers"]["tokens_per_s_ours"])
    return results


def bench_chat_turn(llm: TextPipeline, repeats: int) -> dict:
    """Seconds to the first token of a chat's fourth turn on llama.cpp's batcher, as a chat runs it (the three turns
    before it just written, so their cells are kept: only the new message is read) and with every kept prefix
    forgotten first (the whole conversation is read), alternated; medians."""
    questions = ["Tell me about the sea.", "And the wind?", "What about lighthouses?", "Who keeps them?"]

    def first_token(history: list[dict]) -> float:
        t = time.perf_counter()
        stream = llm.stream(questions[-1], "", 48, 0.0, 1.0, 0, history=history)
        next(iter(stream))
        seconds = time.perf_counter() - t
        stream.close()
        return seconds

    kept, whole = [], []
    for _ in range(repeats):
        llm.batcher.forget_kept()
        history = []
        for q in questions[:-1]:
            reply = final(llm.stream(q, "", 48, 0.0, 1.0, 0, history=history)).text
            history += [{"role": "user", "content": q}, {"role": "assistant", "content": reply}]
        kept.append(first_token(history))
        llm.batcher.forget_kept()
        whole.append(first_token(history))
    return {"prompt_tokens": len(llm.chat_ids(questions[-1], None, "", history)),
            "first_token_s_kept": statistics.median(kept), "first_token_s_read_whole": statistics.median(whole),
            "speedup": statistics.median(whole) / statistics.median(kept)}


def start_app(extra_env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    """`python app.py` on a free port: (process, url, seconds until the UI answered HTTP)."""
    return start_server([str(ROOT / "app.py")], {"PRESET": "bundled", **(extra_env or {})})


def start_server(argv: list[str], extra_env: dict | None = None) -> tuple[subprocess.Popen, str, float]:
    """`python *argv --port P` (a Gradio app) on a free port P: (process, url, seconds until it answered HTTP)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv, "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(extra_env or {})})
    while time.perf_counter() - t < 300:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}/", time.perf_counter() - t
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode} before answering") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{' '.join(argv)} did not answer within 300 s")


def memory_mb(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss": int(fields["VmHWM"].split()[0]) / 1024}


SERVER_REQUESTS = {  # one of each, as a user would send them (the registry's default steps)
    "/text": dict(prompt="Name three colours.", system_prompt="", max_new_tokens=32, temperature=0.7, top_p=0.9, seed=0),
    "/chat": dict(prompt="Name three colours.", history=[], system_prompt="", max_new_tokens=32, temperature=0.7,
                  top_p=0.9, seed=0),  # what the Text tab sends: its updates carry the chat, candidates and more
    "/image": dict(prompt="a large red circle in the center on a blue background", negative_prompt="",
                   num_inference_steps=25, guidance_scale=3.0, seed=0, width=64, height=64),
    "/audio": dict(prompt="a fast drum beat", negative_prompt="", duration_s=2.0, num_inference_steps=25,
                   guidance_scale=3.0, seed=0),
    "/video": dict(prompt="a small red circle moving right on a blue background", negative_prompt="", num_frames=8,
                   num_inference_steps=15, guidance_scale=4.0, seed=0),
    "/understand": dict(text="I loved it, what a wonderful day.", task="sentiment"),
    "/translate": dict(text="The cat sleeps on the sofa.", source_language="English", target_language="French"),
    "/text_diffusion": dict(prompt="a small red circle on the left", gen_length=32, num_inference_steps=16, seed=0),
}


_SESSIONS: dict = {}  # (url, browser session) -> its httpx.Client
_SESSIONS_LOCK = threading.Lock()


def _connection(url: str, session: str | None):
    """The keep-alive connections of one browser session, made once, as a browser keeps its connections to a site.
    A new httpx.Client per request cost the client about 20 ms (its SSL context and a new TCP connection), which the
    wrapper's price counted as the server's."""
    import httpx

    with _SESSIONS_LOCK:
        if (url, session) not in _SESSIONS:
            # Connections idle longer than uvicorn keeps them open (5 s) are not reused: the server may close one
            # as a request goes out on it (a truncated reply). Browsers retry those; this does not need to.
            _SESSIONS[url, session] = httpx.Client(timeout=300, limits=httpx.Limits(keepalive_expiry=4.0))
        return _SESSIONS[url, session]


def browser_like(url: str, endpoint: str, kwargs: dict, params: list[dict], session: str | None = None) -> list | None:
    """One request as the browser makes it: POST the inputs (in the browser tab's `session`, on its open
    connections), read the event stream, and GET every file an update names (each step's preview image). Returns
    the outputs of its last message, as sent.
    gradio_client does the same, but also copies every file into its own cache and runs its update processing in
    this process, which on the 2-core machine took as much CPU as the server did (one image with previews: 3.8 s
    through gradio_client, 2.6 s so)."""

    def files(value):
        if isinstance(value, dict):
            if isinstance(value.get("url"), str):
                yield value["url"]
            for v in value.values():
                yield from files(v)
        elif isinstance(value, list):
            for v in value:
                yield from files(v)

    data = [kwargs.get(p["parameter_name"], p.get("parameter_default")) for p in params]
    url = url.rstrip("/")
    http = _connection(url, session)
    reply = http.post(f"{url}/gradio_api/call{endpoint}", json={"data": data, "session_hash": session}).json()
    if "event_id" not in reply:
        raise RuntimeError(f"{endpoint} refused: {reply}")
    event = reply["event_id"]
    seen, kind, outputs = set(), None, None
    with http.stream("GET", f"{url}/gradio_api/call{endpoint}/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("generating", "complete"):
                outputs = json.loads(line[5:])
                for file_url in set(files(outputs)) - seen:
                    seen.add(file_url)
                    http.get(file_url).raise_for_status()
            elif line.startswith("data:") and kind == "error":
                raise RuntimeError(f"{endpoint} failed: {line[5:]}")
    return outputs


def in_turn_vs_together(url: str, endpoint: str, requests: list[dict], params: list[dict], users: list[str],
                        rounds: int) -> dict:
    """`requests` (one per browser session in `users`) sent one after another, then all at once, `rounds` times
    alternated: the seconds of each and the throughput ratio (in turn over together; the median of the rounds)."""
    sequential, together = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for kwargs, user in zip(requests, users):
            browser_like(url, endpoint, kwargs, params, user)
        sequential.append(time.perf_counter() - t)
        threads = [threading.Thread(target=browser_like, args=(url, endpoint, kw, params, user))
                   for kw, user in zip(requests, users)]
        t = time.perf_counter()
        [th.start() for th in threads]
        [th.join() for th in threads]
        together.append(time.perf_counter() - t)
    ratios = [a / b for a, b in zip(sequential, together)]
    return {"sequential_s": sequential, "concurrent_s": together, "throughput_ratios": ratios,
            "throughput_ratio": statistics.median(ratios)}


def bench_gradio_updates(n: int = 50) -> dict:
    """Milliseconds Gradio's own processing takes per streamed update of (image, HTML, gallery): with the image
    and gallery left as gr.skip(), and with a plain value for each (the same 64x64 PNG, None). No model, no
    HTTP: `Blocks.process_api` as the queue calls it, each update in turn. Why demo/ui.py's `Shown` resends
    values: Gradio builds a new component and its config for every gr.skip() aimed at one."""
    import asyncio

    import gradio as gr
    from gradio.state_holder import SessionState
    from PIL import Image

    picture = Image.new("RGB", (64, 64), "red")

    def skips():
        for i in range(n):
            yield gr.skip(), f"<b>{i}</b>", gr.skip()

    def values():
        for i in range(n):
            yield picture, f"<b>{i}</b>", None

    with gr.Blocks() as demo:
        outputs = [gr.Image(format="png", interactive=False), gr.HTML(), gr.Gallery(columns=8)]
        button = gr.Button()
        events = {name: button.click(fn, None, outputs)["id"] for name, fn in (("skip", skips), ("value", values))}
    fns = {name: demo.fns[event] for name, event in events.items()}

    async def per_update(block_fn) -> float:
        state, iterator, count = SessionState(demo), None, 0
        t = time.perf_counter()
        while True:
            result = await demo.process_api(block_fn=block_fn, inputs=[], state=state, iterator=iterator)
            iterator, count = result["iterator"], count + 1
            if not result.get("is_generating"):
                return (time.perf_counter() - t) / count * 1000

    runs = {name: [asyncio.run(per_update(fn)) for _ in range(3)] for name, fn in fns.items()}
    return {f"{name}_ms": statistics.median(v) for name, v in runs.items()}


def bench_server(concurrent: int = 8, rounds: int = 3) -> dict:
    """The app as users meet it: seconds to the UI answering; the first /text reply right after (to its first
    token and in full); `concurrent` /text, /chat and /image requests sent at once against the same sent one after
    another (throughput ratio: the median of `rounds`, the two alternated, as one such pair varies by 10-20 % on a
    2-core machine); the server's RSS and peak RSS once every model has been used."""

    from gradio_client import Client

    proc, url, to_ui = start_app()
    try:
        client = Client(url, verbose=False)
        t = time.perf_counter()
        job = client.submit(**{**SERVER_REQUESTS["/text"], "max_new_tokens": 16}, api_name="/text")
        first = next(iter(job))
        first_token_s = time.perf_counter() - t
        assert first is not None
        job.result()
        results = {"seconds_to_ui": to_ui, "first_text_token_s": first_token_s,
                   "first_text_reply_s": time.perf_counter() - t}
        for endpoint, kwargs in SERVER_REQUESTS.items():  # every model loaded and used once
            client.predict(**kwargs, api_name=endpoint)
        results["memory_mb_every_model_used"] = memory_mb(proc.pid)
        import httpx

        info = httpx.get(f"{url.rstrip('/')}/gradio_api/info").json()["named_endpoints"]
        # One browser tab per user, each already used once: a session's first event makes Gradio copy the config of
        # every component of the app (~570 here, a few tenths of a second), a cost of opening the page rather than
        # of generating, which would otherwise fall on every request of the sequential run.
        users = [f"bench-user-{i}" for i in range(concurrent)]
        for user in users:
            browser_like(url, "/text", {**SERVER_REQUESTS["/text"], "max_new_tokens": 1}, info["/text"]["parameters"], user)
        for endpoint in ("/text", "/chat", "/image"):
            requests = [{**SERVER_REQUESTS[endpoint], "seed": i} for i in range(concurrent)]
            results[f"{endpoint[1:]}_{concurrent}"] = in_turn_vs_together(url, endpoint, requests,
                                                                           info[endpoint]["parameters"], users, rounds)
        results["memory_mb_end"] = memory_mb(proc.pid)
        return results
    finally:
        proc.terminate()
        proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-audio", action="store_true")
    p.add_argument("--skip-video", action="store_true")
    p.add_argument("--skip-llm", action="store_true")
    p.add_argument("--skip-text-diffusion", action="store_true")
    p.add_argument("--skip-server", action="store_true")
    args = p.parse_args()
    # The raw calls run on this thread with the threads our request workers use (pipelines.base), so
    # the ratios compare like for like; bench/thread_teams.py shows why that is one thread on a CPU.
    torch.set_num_threads(TUNING.torch_threads)
    results = {"torch_threads": torch.get_num_threads(), "image": bench_image(args.repeats)}
    if not args.skip_audio:
        results["audio"] = bench_audio(args.repeats)
    if not args.skip_video:
        results["video"] = bench_video(args.repeats)
    if not args.skip_llm:
        results["llm"] = bench_llm(args.repeats)
    if not args.skip_text_diffusion:
        results["text_diffusion"] = bench_text_diffusion(args.repeats)
    if not args.skip_server:
        results["server"] = {**bench_server(), "gradio_ms_per_update": bench_gradio_updates()}
    results["against_before"] = against_before(results)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
