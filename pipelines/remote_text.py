"""The LLM on an OpenAI-compatible server (`--text-backend URL`: vLLM, TGI, llama.cpp's server,
`llama-cpp-python[server]`, Ollama), behind the same interface as the local engines: tokens stream from its
`/v1/completions` (the `openai` SDK) with their top-5 `logprobs` into the same `Step`s (`text.token_step`), so
Text, Understand, Translate and Key differences work unchanged. A server that is down, slow or refuses a request
raises a `BackendError` naming it, in that tab only.

The front end keeps the served model's tokenizer and chat template (`vocab_only`: no weights), read from the
text model's own files (the preset's, or `--text-model`): the prompt is laid out exactly as the local engines
lay it out, and prompt lengths are counted in the model's tokens. Serve the same model as `--text-model`.
"""

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import BackendError, Step, TextOutput, Timer, Tuning, stream_steps
from .specs import ModelSpec
from .text import MAX_CONTEXT_TOKENS, MAX_NEW_TOKENS, TextPipeline, has_llama_cpp, token_step

TOP_K = 5  # candidates per step, as the local engines show
LABEL_TOP = 20  # logprobs read per position when scoring a label or a text's tokens (most servers allow 20)
CONNECT_TIMEOUT_S = 5.0


class OpenAIClient:
    """The calls of an OpenAI-compatible server this app makes, through the `openai` SDK: the served model's name
    and `/v1/completions` (plain, or streamed), each failure as a BackendError naming the server."""

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout_s: float = 120.0):
        import openai

        base = url.rstrip("/")
        self.url = base if base.endswith("/v1") else base + "/v1"
        self.timeout_s = timeout_s
        # openai's own Timeout: the SDK's HTTP library (httpx2 in openai 3.x) refuses another library's Timeout
        self.sdk = openai.OpenAI(base_url=self.url, api_key=api_key or "none", max_retries=0,
                                 timeout=openai.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S))
        self._model = model

    def _fail(self, exc: Exception) -> BackendError:
        import openai

        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return BackendError(f"The text backend at {self.url} did not answer within {self.timeout_s:.0f} s.")
        if isinstance(exc, openai.APIStatusError):
            return BackendError(f"The text backend at {self.url} refused the request (HTTP {exc.status_code}): "
                                f"{str(exc.message)[:300]}")
        return BackendError(f"The text backend at {self.url} is not answering ({type(exc).__name__}: {exc}).")

    @property
    def model(self) -> str:
        """The served model's name: as given, else the first the server lists."""
        if self._model is None:
            try:
                self._model = self.sdk.models.list().data[0].id
            except Exception as exc:  # noqa: BLE001
                raise self._fail(exc) from None
        return self._model

    @staticmethod
    def _body(body: dict) -> dict:
        """The SDK's keyword arguments: the OpenAI fields as they are, the servers' extensions in `extra_body`."""
        known = {"prompt", "max_tokens", "temperature", "top_p", "seed", "logprobs"}
        return {**{k: v for k, v in body.items() if k in known},
                "extra_body": {k: v for k, v in body.items() if k not in known}}

    def complete(self, body: dict) -> dict:
        try:
            return self.sdk.completions.create(model=self.model, **self._body(body)).model_dump()
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc) from None

    @contextlib.contextmanager
    def stream(self, body: dict) -> Iterator[Iterator[dict]]:
        """`with client.stream(body) as events:` each streamed chunk as a dict. Leaving the block closes the
        connection, which is how an OpenAI-compatible server learns to stop generating."""
        try:
            chunks = self.sdk.completions.create(model=self.model, stream=True, **self._body(body))
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc) from None

        def events():
            try:
                for chunk in chunks:
                    yield chunk.model_dump()
            except Exception as exc:  # noqa: BLE001  (a dropped connection, a timeout mid-stream, an error event)
                raise self._fail(exc) from None

        try:
            yield events()
        finally:
            chunks.close()


def _probability(logprob) -> float | None:
    return None if logprob is None else math.exp(float(logprob))


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
                 missing: str | None = None, tuning: Tuning | None = None):
        super().__init__(spec, missing=missing, device="cpu", tuning=tuning)
        self.url = url
        self.client = OpenAIClient(url, model, api_key, self.tuning.backend_timeout_s)
        self.lock = contextlib.nullcontext()  # understanding: the server takes concurrent requests

    def engine_name(self) -> str:
        return f"a remote server ({self.client.url})"

    @property
    def batched(self) -> bool:
        return True  # the server schedules concurrent requests (continuous batching on vLLM, TGI, llama.cpp)

    @property
    def device(self) -> str:
        return "remote"

    @property
    def threads(self) -> None:
        return None  # the server does the work

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
            if not emit(None):  # left while waiting for a slot
                return TextOutput("", 0.0, [], "cancelled")
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
                        steps.append(token_step(len(pieces), int(max_new_tokens), now, now - last, token, None,
                                                _probability(logprob), [(t, None, _probability(lp)) for t, lp in ranked],
                                                "".join(pieces) if preview else None))
                        last = now
                        if not emit(steps[-1]):
                            return TextOutput("".join(pieces).strip(), timer(), steps, "cancelled")
                    if choice.get("finish_reason"):
                        reason = "stop" if choice["finish_reason"] == "stop" else "length"
            return TextOutput("".join(pieces).strip(), timer(), steps, reason)

        return stream_steps(work, self.slots, join_s=self.tuning.backend_timeout_s)

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

    def continuation_logprob(self, prefix: list[int], continuations: list[str]) -> np.ndarray:
        cache: dict = {}  # the labels' first tokens all follow the same prompt: one request for them all
        totals = []
        for c in continuations:
            ids = self.engine.encode(c)
            totals.append(sum(self._token_logprob(prefix + ids[:k], t, cache) for k, t in enumerate(ids)))
        return np.array(totals)

    def surprisal(self, text: str, progress=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
        ids, offsets = self.engine.token_spans(text)
        seq, cache, bits = [self.engine.eos_token_id] + ids, {}, []
        for k, t in enumerate(ids):  # a request per token: `progress` after each, so a stopped request stops here
            bits.append(-self._token_logprob(seq[:k + 1], t, cache) / math.log(2))
            if progress:
                progress(k + 1, len(ids), self.engine.piece(t))
        return np.array(bits), offsets
