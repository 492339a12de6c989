"""The wrapper's price: the app over HTTP, as a browser uses it, against the raw library call in this process.

Each ratio (and `extra_ms`, the milliseconds the app adds to the raw call) is the median of at least `--rounds`
rounds, more for a short call (as many as fill `--seconds` a side), the two sides alternated within a round
(A, B, A, B, ...), so the machine's drift hits both alike. The app runs in its
own process (`python app.py`, bundled preset, examples not prefilled); the client reads the event stream and
downloads every file an update names, as a browser does (bench.bench.browser_like).

1. `/image`, 25 steps, 64x64, previews on, against `StableDiffusionPipeline.__call__` (no previews), both at the
   app's intra-op threads per request (`TORCH_THREADS`, default 1); the raw call at 2 threads is reported beside.
2. `/text_diffusion`, 32 tokens, 16 steps, against `LLaDA2Pipeline.__call__` with the same arguments; and 48 tokens,
   48 steps, the longest run the bundled model takes.
3. `/text`, 64 tokens greedy: tokens per second against llama.cpp's own streaming call (`Llama.create_completion`
   with `stream=True`, the same GGUF as the app runs it, the same prompt tokens).
4. 8 concurrent `/image` (each its own browser session) against the same 8 in turn: on a quiet machine, and with
   one core busy (a process spinning beside the app).
5. The server's peak RSS (VmHWM) once every tab has run once.
6. Gradio's own price, the floor under 2. (bench/gradio_floor.py): the raw text-diffusion call against the same
   call in a Gradio app with no code of ours, that then yields one text, or the Text diffusion tab's final outputs
   (the values of item 2's last run); measured once the app has stopped (an idle Gradio server polls its queue
   every millisecond).

    python bench/wrapper_price.py [--rounds 3] [--seconds 10] [--skip-concurrent] [--out bench/results/wrapper_price.json]
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import (  # noqa: E402
    SERVER_REQUESTS,
    TUNING,
    browser_like,
    in_turn_vs_together,
    memory_mb,
    raw_text_diffusion,
    start_app,
    start_server,
)
from pipelines.image import ImagePipeline  # noqa: E402
from pipelines.presets import MODELS, get_spec  # noqa: E402
from pipelines.text import TextPipeline  # noqa: E402
from pipelines.text_diffusion import TextDiffusionPipeline  # noqa: E402

IMAGE = dict(prompt="a large red circle in the center on a blue background", negative_prompt="", num_inference_steps=25,
             guidance_scale=4.0, seed=0, width=64, height=64)
TEXT_DIFFUSION = dict(prompt="a small red circle on the left on a blue background", gen_length=32, num_inference_steps=16,
                      seed=0)
# The longest request the bundled model takes (48 tokens, one a step): the 32-token raw call took 0.26 s on its
# machine, 0.05 s on an AMX one, where the app's fixed cost per request weighs five times more in the ratio.
TEXT_DIFFUSION_LONG = {**TEXT_DIFFUSION, "gen_length": 48, "num_inference_steps": 48}
TEXT = dict(prompt="Write a long story about the sea, the wind and a lighthouse keeper.", system_prompt="",
            max_new_tokens=64, temperature=0.0, top_p=1.0, seed=0)
TABS_ONCE = ("/text", "/chat", "/image", "/audio", "/video", "/understand", "/translate", "/text_diffusion")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def alternated(pairs: dict, rounds: int, seconds: float = 0.0) -> dict:
    """{name: (raw, http)} -> per name the seconds of each side per round and the median of http / raw. At least
    `rounds` rounds, more for a short call: as many as fill `seconds` a side (a 0.05 s call varies by as much as the
    milliseconds the app adds to it, so it takes many rounds for a median that holds)."""
    out = {}
    for name, (raw, http) in pairs.items():
        raw()  # warm: models loaded, kernels and caches ready
        n = max(rounds, math.ceil(seconds / timed(http)))
        sides = {"raw_s": [], "http_s": []}
        for _ in range(n):
            sides["raw_s"].append(timed(raw))
            sides["http_s"].append(timed(http))
        ratios = [h / r for h, r in zip(sides["http_s"], sides["raw_s"])]
        extra_ms = statistics.median(1e3 * (h - r) for h, r in zip(sides["http_s"], sides["raw_s"]))
        out[name] = {**sides, "ratios": ratios, "ratio": statistics.median(ratios), "extra_ms": extra_ms}
    return out


def raw_calls(threads: int) -> dict:
    """The raw library calls, each with the same model files and arguments as the app's request."""
    image = ImagePipeline(get_spec("image", "bundled"), device="cpu").pipe

    def raw_image(n_threads=threads):
        torch.set_num_threads(n_threads)
        image(prompt=IMAGE["prompt"], num_inference_steps=25, guidance_scale=IMAGE["guidance_scale"], width=64, height=64,
              generator=torch.Generator().manual_seed(0))

    ours = TextDiffusionPipeline(get_spec("text_diffusion", "bundled"), device="cpu")
    text_diffusion = {r["gen_length"]: raw_text_diffusion(ours, r["prompt"], r["gen_length"], r["num_inference_steps"],
                                                          threads) for r in (TEXT_DIFFUSION, TEXT_DIFFUSION_LONG)}

    llm = TextPipeline(MODELS["text"]["bundled"], device="cpu", tuning=TUNING)
    llm.load()
    prompt_ids = llm.chat_ids(TEXT["prompt"])

    def raw_text():  # llama.cpp's own streaming completion: 64 tokens, greedy
        n = 0
        for _ in llm.engine.llm.create_completion(prompt_ids, max_tokens=64, temperature=0.0, top_k=1, stream=True):
            n += 1
        return n

    return {"image": raw_image, "image_2_threads": lambda: raw_image(2), "text_diffusion": text_diffusion[32],
            "text_diffusion_long": text_diffusion[48], "text": raw_text}


def gradio_floor(raw, payload: list, rounds: int, seconds: float) -> dict:
    """Gradio's own price for one streamed event (bench/gradio_floor.py): the raw text-diffusion call (`raw`) here,
    against the same call in an app with no code of ours over HTTP, that then yields one text (`one_text`) or the
    Text diffusion tab's final outputs, these values (`text_diffusion_outputs`)."""
    import httpx

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(payload, f)
    prompt = TEXT_DIFFUSION["prompt"]
    proc, url, _ = start_server([str(ROOT / "bench" / "gradio_floor.py"), "--payload", f.name, "--prompt", prompt,
                                 "--gen-length", str(TEXT_DIFFUSION["gen_length"]),
                                 "--steps", str(TEXT_DIFFUSION["num_inference_steps"]),
                                 "--threads", str(TUNING.torch_threads)])
    try:
        info = httpx.get(f"{url}gradio_api/info").json()["named_endpoints"]

        def http(endpoint):
            return lambda: browser_like(url, endpoint, {}, info[endpoint]["parameters"], "floor")

        return alternated({"one_text": (raw, http("/one")), "text_diffusion_outputs": (raw, http("/text_diffusion"))},
                          rounds, seconds)
    finally:
        proc.terminate()
        proc.wait()
        os.unlink(f.name)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0, help="each side of a ratio runs at least this long")
    p.add_argument("--concurrent", type=int, default=8)
    p.add_argument("--skip-concurrent", action="store_true")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "wrapper_price.json"))
    args = p.parse_args()
    import httpx

    results = {"machine": {"cpus": os.cpu_count(), "torch_threads_per_request": TUNING.torch_threads}}
    proc, url, results["seconds_to_ui"] = start_app({"PREFILL_EXAMPLES": "0"})
    try:
        info = httpx.get(f"{url.rstrip('/')}/gradio_api/info").json()["named_endpoints"]
        users = [f"bench-user-{i}" for i in range(args.concurrent)]
        for endpoint in TABS_ONCE:  # every tab once: models loaded, then the peak RSS
            browser_like(url, endpoint, SERVER_REQUESTS[endpoint], info[endpoint]["parameters"], users[0])
        results["memory_mb_every_tab_once"] = memory_mb(proc.pid)
        for user in users[1:]:  # each browser session's first event copies the app's config: not a request's cost
            browser_like(url, "/text", {**TEXT, "max_new_tokens": 1}, info["/text"]["parameters"], user)

        raw = raw_calls(TUNING.torch_threads)

        def http(endpoint, kwargs):
            return lambda: browser_like(url, endpoint, kwargs, info[endpoint]["parameters"], users[0])

        results["ratios"] = alternated({"image": (raw["image"], http("/image", IMAGE)),
                                        "image_raw_at_2_threads": (raw["image_2_threads"], http("/image", IMAGE)),
                                        "text_diffusion": (raw["text_diffusion"], http("/text_diffusion", TEXT_DIFFUSION)),
                                        "text_diffusion_long": (raw["text_diffusion_long"],
                                                                http("/text_diffusion", TEXT_DIFFUSION_LONG)),
                                        "text": (raw["text"], http("/text", TEXT))}, args.rounds, args.seconds)
        text = results["ratios"]["text"]  # as tokens per second: 64 tokens each side (the prompt asks for more)
        text["tokens_per_s_raw"] = [64 / s for s in text["raw_s"]]
        text["tokens_per_s_http"] = [64 / s for s in text["http_s"]]
        text["tokens_per_s_ratio"] = statistics.median(r / h for r, h in zip(text["raw_s"], text["http_s"]))
        last_text_diffusion = browser_like(url, "/text_diffusion", TEXT_DIFFUSION, info["/text_diffusion"]["parameters"],
                                           users[0])

        if not args.skip_concurrent:
            params, images = info["/image"]["parameters"], [{**IMAGE, "seed": i} for i in range(len(users))]
            results["image_8_quiet"] = in_turn_vs_together(url, "/image", images, params, users, args.rounds)
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one core busy elsewhere
            try:
                results["image_8_one_core_busy"] = in_turn_vs_together(url, "/image", images, params, users, args.rounds)
            finally:
                hog.kill()
        results["memory_mb_end"] = memory_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    results["gradio_floor"] = gradio_floor(raw["text_diffusion"], last_text_diffusion, args.rounds, args.seconds)

    r, floor = results["ratios"], results["gradio_floor"]
    summary = {"/image with previews over raw (goal <= 1.3)": r["image"]["ratio"],
               "  (ms the app adds to /image)": r["image"]["extra_ms"],
               "  (raw at 2 threads)": r["image_raw_at_2_threads"]["ratio"],
               "/text_diffusion over raw (goal <= 1.3)": r["text_diffusion"]["ratio"],
               "  (ms the app adds to /text_diffusion)": r["text_diffusion"]["extra_ms"],
               "  (48 tokens, 48 steps)": r["text_diffusion_long"]["ratio"],
               "  Gradio's floor: the raw call in a bare Gradio event, one text": floor["one_text"]["ratio"],
               "  Gradio's floor: ... the Text diffusion tab's final outputs": floor["text_diffusion_outputs"]["ratio"],
               "  (ms Gradio adds: one text)": floor["one_text"]["extra_ms"],
               "  (ms Gradio adds: the tab's final outputs)": floor["text_diffusion_outputs"]["extra_ms"],
               "/text tokens/s over llama.cpp streaming (goal >= 0.9)": r["text"]["tokens_per_s_ratio"],
               "peak RSS MB, every tab once (goal <= 1600)": results["memory_mb_every_tab_once"]["peak_rss"]}
    if not args.skip_concurrent:
        summary["8 concurrent /image over 8 in turn, quiet (goal >= 1.5)"] = results["image_8_quiet"]["throughput_ratio"]
        summary["8 concurrent /image over 8 in turn, one core busy (goal >= 1.0)"] = \
            results["image_8_one_core_busy"]["throughput_ratio"]
    results["summary"] = summary
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    for k, v in summary.items():
        print(f"{k}: {v:.2f}")


if __name__ == "__main__":
    main()
