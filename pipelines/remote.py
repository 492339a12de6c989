"""Models served elsewhere, behind the same pipelines: a CPU front end, the models on other machines.

- `RemoteTextPipeline` (`--text-backend URL`): the LLM on any OpenAI-compatible server (vLLM, TGI, llama.cpp's
  server, `llama-cpp-python[server]`, Ollama). Tokens stream from its `/v1/completions` with their top-5
  `logprobs` into the same `Step`s as the local engines, so Text, Understand, Translate and Key differences
  work unchanged.
- `RemoteDiffusionPipeline` (`--image-backend URL`, `--audio-backend`, `--video-backend`): a diffusion tab's
  model on another instance of this app (a GPU machine, a ZeroGPU Space) through `gradio_client`, its step
  previews streamed as they come.

A remote that is down, slow or refuses a request raises a `BackendError` naming it, in that tab only.

The front end keeps the served model's tokenizer and chat template (`vocab_only`: no weights), read from the
text model's own files (the preset's, or `--text-model`): the prompt is laid out exactly as the local engines
lay it out, and prompt lengths are counted in the model's tokens. Serve the same model as `--text-model`.
"""

import contextlib
import threading
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import Step, TextOutput, Timer, stream_steps
from .registry import ModelSpec
from .text import MAX_CONTEXT_TOKENS, MAX_NEW_TOKENS, TextPipeline, has_llama_cpp

TOP_K = 5  # candidates per step, as the local engines show
LABEL_TOP = 20  # logprobs read per position when scoring a label or a text's tokens (most servers allow 20)
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = float(os.environ.get("BACKEND_TIMEOUT_S", "120"))  # silence from a remote longer than this is an error


class BackendError(RuntimeError):
    """A remote model server is down, too slow, or refused the request (the message names it)."""


class OpenAIClient:
    """The few calls of an OpenAI-compatible server this app makes: `/v1/models`, `/v1/completions`
    (plain, or streamed as server-sent events). `api_key`: sent as a bearer token."""

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None):
        import httpx

        base = url.rstrip("/")
        self.url = base if base.endswith("/v1") else base + "/v1"
        self.http = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                                 headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        self._model = model

    def _fail(self, exc: Exception) -> BackendError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"The text backend at {self.url} did not answer within {READ_TIMEOUT_S:.0f} s "
                                f"({type(exc).__name__}).")
        if isinstance(exc, httpx.HTTPStatusError):
            try:
                body = exc.response.text[:300]
            except Exception:  # noqa: BLE001  (a streamed body not read)
                body = ""
            return BackendError(f"The text backend at {self.url} refused the request (HTTP {exc.response.status_code}): "
                                f"{body}")
        return BackendError(f"The text backend at {self.url} is not answering ({type(exc).__name__}: {exc}).")

    @property
    def model(self) -> str:
        """The served model's name: as given, else the first the server lists."""
        if self._model is None:
            try:
                r = self.http.get(self.url + "/models")
                r.raise_for_status()
                self._model = r.json()["data"][0]["id"]
            except Exception as exc:  # noqa: BLE001
                raise self._fail(exc) from None
        return self._model

    def complete(self, body: dict) -> dict:
        try:
            r = self.http.post(self.url + "/completions", json={"model": self.model, **body})
            r.raise_for_status()
            return r.json()
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc) from None

    @contextlib.contextmanager
    def stream(self, body: dict) -> Iterator[Iterator[dict]]:
        """`with client.stream(body) as events:` each streamed chunk as a dict. Leaving the block closes the
        connection, which is how an OpenAI-compatible server learns to stop generating."""
        try:
            with self.http.stream("POST", self.url + "/completions", json={"model": self.model, **body, "stream": True}) as r:
                if r.is_error:
                    r.read()
                    r.raise_for_status()

                def events():
                    try:
                        for line in r.iter_lines():
                            if line.startswith("data:"):
                                data = line[5:].strip()
                                if data == "[DONE]":
                                    return
                                event = json.loads(data)
                                if "error" in event:
                                    raise BackendError(f"The text backend at {self.url} failed: {event['error']}")
                                yield event
                    except BackendError:
                        raise
                    except Exception as exc:  # noqa: BLE001  (a dropped connection, a timeout mid-stream)
                        raise self._fail(exc) from None

                yield events()
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc) from None


def _probability(logprob) -> float | None:
    return None if logprob is None else round(math.exp(float(logprob)), 4)


class RemoteTextPipeline(TextPipeline):
    """The LLM on an OpenAI-compatible server; prompts, understanding and translation as `TextPipeline`'s.

    Generation streams `/v1/completions` with `logprobs: 5`: each token is a Step whose candidates are the server's
    top-5 (their probabilities as the server reports them: vLLM and llama.cpp give the model's own distribution,
    before temperature). Sampling (temperature, top-p, repetition penalty, seed) is the server's, asked for with
    the OpenAI fields plus the common extensions `top_k`, `min_p` and `repeat_penalty`/`repetition_penalty`, so
    that only top-p truncates, as here. Which tokens a repetition penalty counts is the server's too: vLLM's, like
    ours, counts the prompt's; llama-cpp-python's only the last 64 tokens generated.

    Understanding reads label likelihoods and each token's surprisal from the top-20 logprobs of single-token
    completions, one position at a time (the OpenAI `echo` of prompt logprobs is not served everywhere, and
    llama-cpp-python 0.3's is off by one position). A token outside the server's top-20 scores the 20th's
    logprob: a bound, which ranks it as at least that surprising.
    """

    def __init__(self, spec: ModelSpec, url: str, model: str | None = None, api_key: str | None = None,
                 missing: str | None = None):
        super().__init__(spec, missing=missing, device="cpu")
        self.url = url
        self.client = OpenAIClient(url, model, api_key)
        self.lock = contextlib.nullcontext()  # understanding: the server takes concurrent requests

    def engine_name(self) -> str:
        return f"a remote server ({self.client.url})"

    @property
    def batched(self) -> bool:
        return True  # the server schedules concurrent requests (continuous batching on vLLM, TGI, llama.cpp)

    @property
    def device(self) -> str:
        return "remote"

    def load(self) -> None:
        """The tokenizer and chat template of the text model, without its weights (the server has those)."""
        if self._engine is not None:
            return
        path, gguf_file = self.source()
        if gguf_file and has_llama_cpp():
            from .llm_engines import LlamaCppEngine

            engine = LlamaCppEngine(str(Path(path) / gguf_file), n_ctx=MAX_CONTEXT_TOKENS + MAX_NEW_TOKENS, vocab_only=True)
        else:
            from .llm_engines import TransformersEngine

            engine = TransformersEngine(path, gguf_file, "cpu", vocab_only=True)
        self._engine = engine

    def join_tokens(self, tokens: list[dict]) -> str:
        return "".join(t["token"] for t in tokens)

    def prompt_text(self, ids) -> str:
        """Token ids as the text the server reads (special tokens written out: servers tokenize them back)."""
        return self.engine.decode(ids, special=True)

    # -- generation --------------------------------------------------------------------------------
    def stream(self, prompt: str, system_prompt: str = "", max_new_tokens: int | None = None,
               temperature: float | None = None, top_p: float | None = None, seed: int = 0,
               preview: bool = True, answer_prefix: str = "", repetition_penalty: float = 1.0,
               prefix: list[dict] | None = None, history: list[dict] | None = None) -> Iterator[Step | TextOutput]:
        max_new_tokens, temperature, top_p, history = self.request_settings(prompt, system_prompt, max_new_tokens,
                                                                            temperature, top_p, seed, history)

        def work(emit):
            timer = Timer()
            ids = self.chat_ids(prompt.strip(), (system_prompt or "").strip() or None, answer_prefix, history)
            body = {"prompt": self.prompt_text(ids) + self.join_tokens(prefix or []), "max_tokens": int(max_new_tokens),
                    "temperature": float(temperature), "top_p": float(top_p), "seed": int(seed), "logprobs": TOP_K,
                    "top_k": 0, "min_p": 0.0, "repeat_penalty": float(repetition_penalty),
                    "repetition_penalty": float(repetition_penalty)}
            pieces, steps, last, reason = [], [], timer(), "length"
            with self.client.stream(body) as events:
                for event in events:
                    choice = (event.get("choices") or [{}])[0]
                    logprobs = choice.get("logprobs") or {}
                    tokens = logprobs.get("tokens") or ([choice["text"]] if choice.get("text") else [])
                    chosen = logprobs.get("token_logprobs") or [None] * len(tokens)
                    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
                    for token, logprob, top in zip(tokens, chosen, tops):
                        pieces.append(token)
                        now = timer()
                        ranked = sorted((top or {}).items(), key=lambda kv: -kv[1])[:TOP_K]
                        info = {"token": token, "token_id": None, "probability": _probability(logprob),
                                "candidates": [{"token": t, "token_id": None, "probability": _probability(lp)}
                                               for t, lp in ranked],
                                "seconds": round(now - last, 4)}
                        last = now
                        steps.append(Step(index=len(pieces), total=int(max_new_tokens), elapsed=now, info=info,
                                          preview="".join(pieces) if preview else None))
                        if not emit(steps[-1]):
                            return TextOutput("".join(pieces).strip(), timer(), steps, "cancelled")
                    if choice.get("finish_reason"):
                        reason = "stop" if choice["finish_reason"] == "stop" else "length"
            return TextOutput("".join(pieces).strip(), timer(), steps, reason)

        return stream_steps(work, self.slots, cpu=False)

    # -- understanding -----------------------------------------------------------------------------
    def _next_logprobs(self, ids, cache: dict) -> dict[str, float]:
        """The server's top-LABEL_TOP next tokens after `ids` ({token text: logprob}), once per prompt."""
        key = tuple(ids)
        if key not in cache:
            out = self.client.complete({"prompt": self.prompt_text(ids), "max_tokens": 1, "temperature": 0.0,
                                        "logprobs": LABEL_TOP})
            top = ((out.get("choices") or [{}])[0].get("logprobs") or {}).get("top_logprobs") or [None]
            if not top[0]:
                raise BackendError(f"The text backend at {self.client.url} returned no logprobs: understanding reads them "
                                   "(llama-cpp-python's server needs --logits_all true).")
            cache[key] = top[0]
        return cache[key]

    def _token_logprob(self, ids, token_id: int, cache: dict) -> float:
        top = self._next_logprobs(ids, cache)
        return float(top.get(self.engine.piece(token_id), min(top.values())))

    def _continuation_logprob(self, prefix: list[int], continuations: list[str]) -> np.ndarray:
        cache: dict = {}  # the labels' first tokens all follow the same prompt: one request for them all
        totals = []
        for c in continuations:
            ids = self.engine.encode(c)
            totals.append(sum(self._token_logprob(prefix + ids[:k], t, cache) for k, t in enumerate(ids)))
        return np.array(totals)

    def _surprisal(self, text: str, progress=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
        ids, offsets = self.engine.token_spans(text)
        seq, cache, bits = [self.engine.eos_token_id] + ids, {}, []
        for k, t in enumerate(ids):  # a request per token: `progress` after each, so a stopped request stops here
            bits.append(-self._token_logprob(seq[:k + 1], t, cache) / math.log(2))
            if progress:
                progress(k + 1, len(ids), self.engine.piece(t))
        return np.array(bits), offsets


# -- diffusion tabs on another instance of this app ---------------------------------------------------------------
# Each tab's API on this app (demo/*_tab.py): its argument names in order (then "show previews"), and where the step
# preview sits in its outputs. The first output is the finished file, the second the progress bar, whose text starts
# with "done:" on the last update.
REMOTE_APIS = {
    "image": ("/image", ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "seed", "width", "height"), 0),
    "audio": ("/audio", ("prompt", "negative_prompt", "duration_s", "num_inference_steps", "guidance_scale", "seed"), 2),
    "video": ("/video", ("prompt", "negative_prompt", "num_frames", "num_inference_steps", "guidance_scale", "seed"), 2),
}
REMOTE_SLOTS = int(os.environ.get("REMOTE_SLOTS", "4"))  # requests in flight to one remote app (it queues the rest)


def _step_of(progress) -> tuple[int, int] | None:
    """(step, steps) from a remote app's progress bar (demo/ui.progress_html): its updates may skip steps (demo/ui.Pacer)."""
    found = re.search(r"<progress value='(\d+)' max='(\d+)'>", str(progress))
    return (int(found[1]), int(found[2])) if found else None


def _file(value) -> str | None:
    """The local path of a file output as gradio_client hands it (a path, or a dict with one)."""
    if isinstance(value, dict):
        value = value.get("path") or value.get("image") or value.get("video")
        return _file(value)
    return value if isinstance(value, str) and os.path.exists(value) else None


class RemoteDiffusionPipeline:
    """A diffusion tab's model on another instance of this app (a GPU machine, a ZeroGPU Space), through
    `gradio_client`: the same `stream` as the local pipeline, one Step per streamed update of the remote tab (its
    step preview), then the same output object, read back from the finished file (the recipe inside it too).

    `local` is the pipeline this tab would run here: its spec gives the defaults and limits, and its checks refuse
    bad input before anything is sent. The remote's own model may be another: the tab names the remote."""

    def __init__(self, local, url: str):
        self.local, self.url, self.task = local, url, local.task
        self.spec, self.missing = local.spec, None
        self.lock = threading.BoundedSemaphore(REMOTE_SLOTS)
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def info(self) -> dict:
        return {**self.local.info, "missing": None, "engine": f"a remote app ({self.url})"}

    @property
    def vocabulary(self):
        return self.local.vocabulary

    def limit(self, name: str, default: tuple) -> tuple:
        return self.local.limit(name, default)

    def check_inputs(self, *args):
        return self.local.check_inputs(*args)

    @property
    def client(self):
        """The gradio_client Client, made on first use (it reads the remote app's API; HF_TOKEN for a private Space)."""
        with self._client_lock:
            if self._client is None:
                from gradio_client import Client

                try:
                    self._client = Client(self.url, token=os.environ.get("HF_TOKEN"), verbose=False,
                                          httpx_kwargs={"timeout": READ_TIMEOUT_S})
                except Exception as exc:  # noqa: BLE001
                    raise BackendError(f"The {self.task} backend at {self.url} is not answering "
                                       f"({type(exc).__name__}: {exc}).") from None
            return self._client

    def stream(self, *args, preview: bool = True, prompt_after: str | None = None, switch_step: int | None = None,
               **kwargs):
        if prompt_after is not None or switch_step is not None:
            raise ValueError("Switching prompts mid-way needs the image model in this process; the image tab runs on "
                             f"a remote app ({self.url}).")
        api_name, names, preview_at = REMOTE_APIS[self.task]
        values = dict(zip(names, args)) | kwargs
        unknown = set(values) - set(names)
        if unknown:
            raise TypeError(f"unexpected arguments for {self.task}: {', '.join(sorted(unknown))}")
        d = self.spec.defaults
        values = {n: d.get(n) if values.get(n) is None and n not in ("prompt", "seed") else values.get(n, "")
                  for n in names}
        values["seed"] = values["seed"] if values["seed"] is not None else 0
        self.check_inputs(*values.values())

        def work(emit):
            from gradio_client.exceptions import AppError

            timer = Timer()
            steps, job, total = [], None, int(values["num_inference_steps"])
            try:
                job = self.client.submit(*values.values(), bool(preview), api_name=api_name)
                for update in job:
                    if update is None:
                        continue
                    found = _step_of(update[1])
                    if "done:" in str(update[1]):  # the finished file, read below; its bar has the steps run
                        if found is None or (steps and steps[-1].index >= found[0]):
                            continue
                        (index, steps_n), path = found, None  # the last step, if the remote's pacing left it out
                    else:
                        (index, steps_n), path = found or (len(steps) + 1, total), _file(update[preview_at])
                    steps.append(Step(index=index, total=steps_n, elapsed=timer(),
                                      preview=self._read_preview(path) if preview and path else None))
                    if not emit(steps[-1]):
                        job.cancel()
                        return None
                outputs = job.outputs()
                result = job.result()  # raises the remote's error, if it failed
            except AppError as exc:
                raise BackendError(f"The {self.task} backend at {self.url} refused the request: {exc}") from None
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001  (connection lost, timeout)
                raise BackendError(f"The {self.task} backend at {self.url} failed ({type(exc).__name__}: {exc}).") from None
            final_file = _file(result[0]) or next((_file(o[0]) for o in reversed(outputs) if o and _file(o[0])), None)
            if final_file is None:
                raise BackendError(f"The {self.task} backend at {self.url} sent no {self.task} back.")
            return self._output(final_file, result, values, timer(), steps)

        return stream_steps(work, self.lock, cpu=False)

    @staticmethod
    def _read_preview(path: str):
        from PIL import Image

        with Image.open(path) as image:
            return image.convert("RGB")

    def _output(self, path: str, result, values: dict, seconds: float, steps: list):
        from .base import AudioOutput, ImageOutput, VideoOutput
        from .recipe import recipe_in

        recipe = recipe_in(path)
        if self.task == "image":
            from PIL import Image

            with Image.open(path) as image:
                image.load()
                return ImageOutput(image=image.copy(), seed=int(values["seed"]), seconds=seconds, steps=steps, recipe=recipe)
        if self.task == "audio":
            import soundfile

            audio, rate = soundfile.read(path, dtype="float32")
            return AudioOutput(rate, audio if audio.ndim == 1 else audio.mean(1), int(values["seed"]), seconds, steps, recipe)
        import imageio_ffmpeg
        from PIL import Image

        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        # The frames as the model made them: the tab's frame gallery (PNGs); the MP4 is scaled up for the browser.
        gallery = [_file(item) for item in (result[3] if len(result) > 3 and isinstance(result[3], list) else [])]
        if gallery and all(gallery):
            reader.close()
            frames = [self._read_preview(f) for f in gallery]
        else:
            w, h = meta["size"]
            frames = [Image.frombytes("RGB", (w, h), bytes(f)) for f in reader]
        return VideoOutput(frames=frames, fps=round(meta.get("fps", 8)), seed=int(values["seed"]), seconds=seconds,
                           steps=steps, recipe=recipe)
