"""The LLM family: a causal LM as a stream of tokens, plus understanding and translation.

Generation is a loop over one token engine (pipelines/llm_engines.py: llama.cpp for the bundled GGUF
when llama-cpp-python is installed, transformers otherwise): each step reads the next-token logits,
keeps the distribution (top-5 candidates and the chosen token's probability), samples with the
request's seed and emits a `Step`; the loop ends when the consumer leaves. Understanding does not
parse free text from a small model: sentiment compares label likelihoods (calibrated against a
content-free input), keywords are the words the model finds most surprising, entities are
capitalised spans typed by label likelihood.
"""

import contextlib
import importlib.util
import math
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import (LOAD_LOCK, THREADS_PER_REQUEST, Cancelled, default_device, Step, TextOutput, Timer, check_range, check_seed,
                   check_text, stream_steps)
from .llm_engines import distribution, log_softmax, penalise, sample, top_candidates
from .registry import ModelSpec, resolve_path

MAX_PROMPT_CHARS = 4000
MAX_HISTORY_CHARS = 32000  # a chat's earlier turns, all together
MAX_CONTEXT_TOKENS = 2048  # the prompt the model reads; the oldest turns of a long chat are left out to fit
MAX_NEW_TOKENS = 2048
MAX_TEXT_CHARS = 2000  # understanding / translation input
MAX_ENTITY_SPANS = 24  # entities typed per request: each costs the model a few passes (175 spans took 10 minutes)
LANGUAGES = ("English", "French", "Spanish", "German", "Italian", "Portuguese", "Chinese")
UNDERSTAND_TASKS = ("sentiment", "entities", "keywords", "summary")
SENTIMENT_LABELS = ("positive", "negative")
ENTITY_TYPES = ("person", "place", "organization", "product", "date")
# Sentiment-free inputs whose mean label likelihood is the calibration prior (measured: 95 % on
# tests/data/sentiment.tsv with these, 52 % uncalibrated, 52 % with "N/A" alone).
SENTIMENT_FREE = ("N/A", "I bought this last week.", "We went there on Sunday.", "The movie is two hours long.",
                  "The hotel is near the station.", "It is a phone.", "The book has ten chapters.")
STOPWORDS = set("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
off on once only or other our ours out over own same she should so some such than that the their theirs them then
there these they this those through to too under until up very was we were what when where which while who whom why
will with would you your yours also yesterday today tomorrow really very much many new one two get got make made""".split())
ENGINES = ("auto", "llama.cpp", "transformers")
# Generations decoded together on llama.cpp (env LLM_SLOTS; 1: one at a time, as on transformers), and the key/value
# cells they share: room for two of the longest requests (MAX_CONTEXT_TOKENS + MAX_NEW_TOKENS) or many short ones.
LLM_SLOTS = int(os.environ.get("LLM_SLOTS", "8"))
BATCH_CONTEXT_TOKENS = 2 * (MAX_CONTEXT_TOKENS + MAX_NEW_TOKENS)
# The weight type llama.cpp runs a GGUF as (env LLAMA_CPP_WEIGHTS): re-rounded to this type once and cached (the
# bundled Q4_1 batches far faster as Q8_0: see llm_engines.requantized), or "shipped" for the file as it is.
LLAMA_CPP_WEIGHTS = os.environ.get("LLAMA_CPP_WEIGHTS", "Q8_0")


def find_gguf(package: str) -> tuple[str, str] | None:
    """(folder, file) of the .gguf shipped inside a pip package, without importing the package."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(list(found.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    return (str(folder), files[0].name) if files else None


def has_llama_cpp() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class TextPipeline:
    task = "text"

    def __init__(self, spec: ModelSpec, missing: str | None = None, device: str | None = None, engine: str | None = None):
        """`engine`: "llama.cpp" (needs a GGUF file and llama-cpp-python), "transformers", or "auto" (env
        LLM_ENGINE, default auto: llama.cpp where it can run this model, else transformers)."""
        self.spec = spec
        self.missing = missing
        self._device = device
        self.engine_choice = engine or os.environ.get("LLM_ENGINE", "auto")
        if self.engine_choice not in ENGINES:
            raise ValueError(f"Unknown LLM engine {self.engine_choice!r}; valid: {', '.join(ENGINES)}.")
        self.lock = threading.Lock()  # the engine's own context: understanding, and generation when not batched
        self.slots = threading.BoundedSemaphore(LLM_SLOTS)  # generations at once on the batcher
        self.batcher = None  # llama.cpp's continuous batching (LLM_SLOTS > 1), made by load()
        self._engine = None
        self._calibration: dict[str, np.ndarray] = {}

    # -- loading ---------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """cpu / cuda: as given, else cuda when there is a GPU (asking torch on first use; llama.cpp runs on the CPU)."""
        if self._device is None:
            self._device = "cpu" if self.engine_name() == "llama.cpp" else default_device()
        return self._device

    def source(self) -> tuple[str, str | None]:
        """(model folder or Hub id, gguf file name or None): the wheel's GGUF when installed."""
        if self.spec.gguf_wheel and (found := find_gguf(self.spec.gguf_wheel)):
            return found
        return resolve_path(self.spec.model_id), None

    def llama_cpp_file(self) -> str:
        """The GGUF file llama.cpp runs: the source's, as LLAMA_CPP_WEIGHTS says (made on first call; see
        llm_engines.requantized). A llama.cpp server meant to give the same replies should load this file."""
        from .llm_engines import requantized

        path, gguf_file = self.source()
        if not gguf_file:
            raise RuntimeError(f"{self.spec.model_id} has no GGUF file for llama.cpp.")
        gguf = str(Path(path) / gguf_file)
        return gguf if LLAMA_CPP_WEIGHTS == "shipped" else requantized(gguf, LLAMA_CPP_WEIGHTS)

    def engine_name(self) -> str:
        """Which engine runs (or will run) this model."""
        if self._engine is not None:
            return self._engine.name
        _, gguf_file = self.source()
        if self.engine_choice == "llama.cpp" or (self.engine_choice == "auto" and gguf_file and has_llama_cpp()):
            return "llama.cpp"
        return "transformers"

    def load(self) -> None:
        if self._engine is not None:
            return
        with LOAD_LOCK:
            if self._engine is not None:
                return
            path, gguf_file = self.source()
            if self.engine_name() == "llama.cpp":
                if not gguf_file or not has_llama_cpp():
                    raise RuntimeError("The llama.cpp engine needs a GGUF model and llama-cpp-python "
                                       f"(pip install llama-cpp-python); {self.spec.model_id} has "
                                       f"{'no GGUF file' if not gguf_file else 'one, but the package is missing'}.")
                from .llm_engines import LlamaCppBatcher, LlamaCppEngine

                engine = LlamaCppEngine(self.llama_cpp_file(), n_ctx=MAX_CONTEXT_TOKENS + MAX_NEW_TOKENS,
                                        threads=max(1, THREADS_PER_REQUEST))
                if self.batched:
                    self.batcher = LlamaCppBatcher(engine, LLM_SLOTS, n_ctx=BATCH_CONTEXT_TOKENS,
                                                   threads_per_request=max(1, THREADS_PER_REQUEST))
                self._engine = engine
            else:
                from .llm_engines import TransformersEngine

                self._engine = TransformersEngine(path, gguf_file, self.device)

    @property
    def engine(self):
        if self._engine is None:
            self.load()
        return self._engine

    @property
    def batched(self) -> bool:
        """Whether generations run together (llama.cpp's continuous batching), rather than one at a time."""
        return LLM_SLOTS > 1 and self.engine_name() == "llama.cpp"

    def decode(self, ids, special: bool = False) -> str:
        """The text of token ids (special tokens left out unless `special`)."""
        return self.engine.decode(ids, special=special)

    def join_tokens(self, tokens: list[dict]) -> str:
        """The text of tokens as steps name them ({"token", "token_id"} dicts, as in a Step's info)."""
        return self.decode([t["token_id"] for t in tokens])

    def count_tokens(self, text: str) -> int:
        return len(self.engine.encode(text))

    @property
    def info(self) -> dict:
        path, gguf_file = self.source()
        return {"task": self.task, "model_id": self.spec.model_id, "licence": self.spec.licence,
                "defaults": dict(self.spec.defaults), "limits": {}, "missing": self.missing,
                "weights": f"{Path(path).name}/{gguf_file}" if gguf_file else path, "engine": self.engine_name()}

    # -- prompts ---------------------------------------------------------------------------------
    def chat_ids(self, user: str, system: str | None = None, answer_prefix: str = "",
                 history: list[dict] | None = None) -> list[int]:
        """Token ids of a chat ending where the assistant starts (plus `answer_prefix`): `history`'s earlier turns
        ({"role": "user" | "assistant", "content": text}), then `user`. The oldest turns are left out, a
        user/assistant pair at a time, until the prompt fits MAX_CONTEXT_TOKENS (the system prompt and the
        new message always stay)."""
        turns = list(history or [])
        while True:
            messages = ([{"role": "system", "content": system}] if system else []) + turns + [{"role": "user", "content": user}]
            text = self.engine.chat_text(messages)
            if text is None:  # a model without a chat template
                text = "".join(f"{m['role'].title()}: {m['content']}\n" if m["role"] != "system" else f"{m['content']}\n\n"
                               for m in messages) + "Assistant:"
            ids = self.engine.encode(text + answer_prefix)
            if len(ids) <= MAX_CONTEXT_TOKENS or not turns:
                return ids
            turns = turns[2:] if len(turns) > 1 and turns[1]["role"] == "assistant" else turns[1:]

    @staticmethod
    def check_history(history) -> list[dict]:
        """A chat's earlier turns: a list of {"role": "user" | "assistant", "content": text}; else a ValueError."""
        if history is None:
            return []
        if not isinstance(history, list):
            raise ValueError(f"`history` must be a list of {{'role', 'content'}} messages; got {type(history).__name__}.")
        total = 0
        for i, m in enumerate(history):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
                raise ValueError(f"`history` message {i} must be {{'role': 'user' or 'assistant', 'content': text}}; got {m!r:.80}.")
            check_text("history", m["content"], MAX_HISTORY_CHARS, optional=True)
            total += len(m["content"])
        if total > MAX_HISTORY_CHARS:
            raise ValueError(f"`history` holds {total} characters; the limit is {MAX_HISTORY_CHARS}. Clear the chat.")
        return [{"role": m["role"], "content": m["content"]} for m in history]

    # -- generation ------------------------------------------------------------------------------
    def check_inputs(self, prompt, system_prompt, max_new_tokens, temperature, top_p, seed) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        if system_prompt is not None and len(system_prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"`system_prompt` is {len(system_prompt)} characters long; the limit is {MAX_PROMPT_CHARS}.")
        check_range("max_new_tokens", max_new_tokens, 1, MAX_NEW_TOKENS, integer=True)
        check_range("temperature", temperature, 0.0, 2.0)
        check_range("top_p", top_p, 0.05, 1.0)
        check_seed(seed)

    def request_settings(self, prompt, system_prompt, max_new_tokens, temperature, top_p, seed, history):
        """(max_new_tokens, temperature, top_p, history): the model's defaults for what is None, all checked."""
        d = self.spec.defaults
        max_new_tokens = d.get("max_new_tokens", 128) if max_new_tokens is None else max_new_tokens
        temperature = d.get("temperature", 0.7) if temperature is None else temperature
        top_p = d.get("top_p", 0.9) if top_p is None else top_p
        self.check_inputs(prompt, system_prompt, max_new_tokens, temperature, top_p, seed)
        return max_new_tokens, temperature, top_p, self.check_history(history)

    def stream(self, prompt: str, system_prompt: str = "", max_new_tokens: int | None = None,
               temperature: float | None = None, top_p: float | None = None, seed: int = 0,
               preview: bool = True, answer_prefix: str = "", repetition_penalty: float = 1.0,
               prefix: list[dict] | None = None, history: list[dict] | None = None) -> Iterator[Step | TextOutput]:
        """Yield one Step per generated token (preview: the text so far), then a TextOutput.

        Each step's info holds the token, its probability and the top-5 candidates, all read from the
        distribution at the sampling temperature after the repetition penalty and before top-p truncation.

        `history`: a chat's earlier turns, [{"role": "user" | "assistant", "content": text}, ...], answered
        as one conversation (`prompt` is the newest user message); see `chat_ids` for how a long one is cut.

        `prefix`: answer tokens taken as already written (a branch of an earlier run), as steps name them
        ({"token", "token_id"} dicts); generation goes on after them, and the steps and text hold only the new tokens.
        """
        max_new_tokens, temperature, top_p, history = self.request_settings(prompt, system_prompt, max_new_tokens,
                                                                            temperature, top_p, seed, history)

        def work(emit):
            engine = self.engine  # loads on first use; not counted in the timings
            timer = Timer()
            seq = self.chat_ids(prompt.strip(), (system_prompt or "").strip() or None, answer_prefix, history)
            seq += [t["token_id"] for t in prefix or []]
            rng = np.random.default_rng(int(seed))
            new, steps, last, reason = [], [], [timer()], ["length"]

            def on_logits(logits):
                """One step: the distribution, the draw, the Step; the token, or None when the reply is over."""
                probs = distribution(penalise(logits, seq, repetition_penalty), float(temperature))
                token = sample(probs, float(temperature), float(top_p), rng)
                seq.append(token)
                new.append(token)
                now = timer()
                info = {"token": engine.piece(token), "token_id": token, "probability": round(float(probs[token]), 4),
                        "candidates": [{"token": engine.piece(i), "token_id": i, "probability": round(p, 4)}
                                       for i, p in top_candidates(probs)],
                        "seconds": round(now - last[0], 4)}
                last[0] = now
                steps.append(Step(index=len(new), total=int(max_new_tokens), elapsed=now, info=info,
                                  preview=engine.decode(new) if preview else None))
                if not emit(steps[-1]):
                    reason[0] = "cancelled"
                elif engine.is_end(token):
                    reason[0] = "stop"
                elif len(new) < int(max_new_tokens):
                    return token
                return None

            if self.batcher is not None:  # decoded together with the other requests in flight
                self.batcher.generate(seq, int(max_new_tokens), on_logits)
            else:
                while on_logits(engine.logits(seq)) is not None:
                    pass
            return TextOutput(text=engine.decode(new).strip(), seconds=timer(), steps=steps, finish_reason=reason[0])

        # Batched generations share the model (each in its own sequence); otherwise one at a time.
        return stream_steps(work, self.slots if self.batched else self.lock, cpu=self.device == "cpu")

    # -- understanding ---------------------------------------------------------------------------
    def chat_prompt(self, user: str, answer_prefix: str = ""):
        """The chat prompt `_continuation_logprob` reads: token ids here, text for a remote server."""
        return self.chat_ids(user, answer_prefix=answer_prefix)

    def _continuation_logprob(self, prefix: list[int], continuations: list[str]) -> np.ndarray:
        """log p(continuation | prefix) for each continuation, summed over its tokens (the prefix is read once:
        the engine keeps it cached between continuations)."""
        return np.array([self.engine.logprobs(prefix + self.engine.encode(c), start=len(prefix)).sum()
                         for c in continuations])

    def _classify(self, user: str, labels: tuple[str, ...], content_free: list[str], prefix: str, key: str,
                  free_prefix: str | None = None) -> dict[str, float]:
        """Label probabilities from label likelihoods, calibrated against content-free inputs (Zhao et al.
        2021, "Calibrate before use"): log p(label | x) - mean log p(label | content-free), softmaxed.
        A small model's raw likelihoods lean hard towards one label; the content-free prior removes that lean."""
        continuations = [" " + label for label in labels]
        scores = self._continuation_logprob(self.chat_prompt(user, answer_prefix=prefix), continuations)
        if key not in self._calibration:
            free = [self._continuation_logprob(self.chat_prompt(x, answer_prefix=free_prefix or prefix), continuations)
                    for x in content_free]
            self._calibration[key] = np.mean(free, axis=0)
        probs = np.exp(log_softmax(scores - self._calibration[key]))
        return {label: round(float(p), 4) for label, p in zip(labels, probs)}

    def sentiment(self, text: str) -> dict:
        def ask(x):
            return f'Review: "{x}"\nIs the sentiment of this review positive or negative?'

        with self.lock:
            probs = self._classify(ask(text), SENTIMENT_LABELS, [ask(x) for x in SENTIMENT_FREE], "The sentiment is",
                                   "sentiment")
        return {"label": max(probs, key=probs.get), "probabilities": probs}

    def _surprisal(self, text: str, progress=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Each token's surprisal in bits (-log2 p, reading `text` after an end-of-text token) and its (start, end)
        character offsets in `text` (one pass here: `progress` is for engines that read a token at a time)."""
        with self.lock:
            ids, offsets = self.engine.token_spans(text)
            return -self.engine.logprobs([self.engine.eos_token_id] + ids, start=1) / math.log(2), offsets

    def keywords(self, text: str, top_k: int = 5, progress=None) -> list[dict]:
        """The content words the model finds hardest to predict (most informative), with surprisal in bits."""
        surprisal, offsets = self._surprisal(text, progress)
        scores: dict[str, float] = {}
        for match in re.finditer(r"[^\W\d_][\w'-]*", text):
            word = match.group(0)
            if word.lower() in STOPWORDS or len(word) < 3:
                continue
            bits = sum(float(s) for s, (a, b) in zip(surprisal, offsets) if a < match.end() and b > match.start())
            scores[word.lower()] = max(scores.get(word.lower(), 0.0), bits)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:top_k]
        return [{"keyword": w, "surprisal_bits": round(s, 2)} for w, s in ranked]

    @staticmethod
    def entity_spans(text: str) -> list[str]:
        """Capitalised spans (not sentence-initial function words), each once, in order of appearance. A dot joins
        only inside a word (U.S.A), so a span never runs on into the next sentence ("Paris. The ...")."""
        spans: list[str] = []
        for match in re.finditer(r"\b[A-Z][\w'-]*(?:\.(?=\w)[\w'-]*)*(?:\s+(?:of|de|la|del|van|von|the)?\s*[A-Z][\w'-]*)*", text):
            span = match.group(0).rstrip(".")
            if span.lower() not in STOPWORDS and span not in spans:
                spans.append(span)
        return spans

    def entities(self, text: str, progress=None) -> list[dict]:
        """The first MAX_ENTITY_SPANS capitalised spans, typed by label likelihood (`progress(i, n, span)` after each)."""
        out = []
        spans = self.entity_spans(text)[:MAX_ENTITY_SPANS]
        for i, span in enumerate(spans):
            with self.lock:
                user = f'Text: "{text}"\nWhat kind of thing is "{span}" in this text: a person, place, organization, product or date?'
                free = 'Text: "N/A"\nWhat kind of thing is "N/A" in this text: a person, place, organization, product or date?'
                probs = self._classify(user, ENTITY_TYPES, [free], f'"{span}" is a', "entity", '"N/A" is a')
            label = max(probs, key=probs.get)
            out.append({"text": span, "type": label, "probability": probs[label]})
            if progress:
                progress(i + 1, len(spans), span)
        return out

    def summary(self, text: str, max_new_tokens: int = 60, progress=None) -> str:
        """One sentence, written greedily (`progress(i, n, token)` after each token)."""
        out = None
        with contextlib.closing(self.stream(f"Summarize the following text in one sentence.\n\n{text}",
                                            max_new_tokens=max_new_tokens, temperature=0.0, top_p=1.0, preview=False,
                                            repetition_penalty=1.2)) as steps:
            for out in steps:
                if isinstance(out, Step) and progress:
                    progress(out.index, out.total, out.info["token"])
        return out.text

    @staticmethod
    def check_understand(text, task) -> str:
        """The input text, stripped; a ValueError naming `text` or `task` if either is wrong."""
        text = check_text("text", text, MAX_TEXT_CHARS)
        if task not in UNDERSTAND_TASKS:
            raise ValueError(f"Unknown `task` {task!r}; valid tasks: {', '.join(UNDERSTAND_TASKS)}.")
        return text

    @staticmethod
    def check_translate(text, source_language, target_language) -> str:
        """The input text, stripped; a ValueError naming the wrong argument."""
        text = check_text("text", text, MAX_TEXT_CHARS)
        for name, lang in (("source_language", source_language), ("target_language", target_language)):
            if lang not in LANGUAGES:
                raise ValueError(f"Unknown `{name}` {lang!r}; valid languages: {', '.join(LANGUAGES)}.")
        if source_language == target_language:
            raise ValueError("`source_language` and `target_language` are the same; pick two different languages.")
        return text

    def understand(self, text: str, task: str) -> dict:
        """One understanding task on `text`; the result is plain JSON-able data."""
        *_, result = self.understand_stream(text, task)
        return result

    def understand_stream(self, text: str, task: str) -> Iterator[Step | dict]:
        """`understand` as a stream: a Step as each part is done (an entity typed, a summary token written, a token
        read on a remote server), then the result. Stopping the iteration (a client gone) stops the work there."""
        text = self.check_understand(text, task)

        def work(emit):
            timer = Timer()

            def progress(index: int, total: int, done: str) -> None:
                if not emit(Step(index=index, total=total, elapsed=timer(), info={"task": task, "done": done})):
                    raise Cancelled

            if task == "sentiment":
                result = self.sentiment(text)
            elif task == "entities":  # and how many spans were left untyped
                result = {"entities": self.entities(text, progress),
                          "spans_not_typed": max(0, len(self.entity_spans(text)) - MAX_ENTITY_SPANS)}
            elif task == "keywords":
                result = {"keywords": self.keywords(text, progress=progress)}
            else:
                result = {"summary": self.summary(text, progress=progress)}
            return {"task": task, **result, "seconds": round(timer(), 3)}

        # No lock of its own: each task holds the engine's lock around its own model calls, a span at a time.
        return stream_steps(work, contextlib.nullcontext(), cpu=self.device == "cpu")

    # -- translation -----------------------------------------------------------------------------
    def translate_stream(self, text: str, source_language: str, target_language: str,
                         max_new_tokens: int = 256) -> Iterator[Step | TextOutput]:
        """Translation is generation with an instruction; streamed token by token like any text."""
        text = self.check_translate(text, source_language, target_language)
        # A translation is about as long as its source: twice its tokens (+16) bounds it, so a one-line sentence
        # gets a one-line answer rather than max_new_tokens of rambling.
        max_new_tokens = min(max_new_tokens, 2 * self.count_tokens(text) + 16)
        prompt = (f"Translate this {source_language} text into {target_language}. "
                  f"Reply with the {target_language} translation only.\n\n{text}")
        return self.stream(prompt, system_prompt="You are a professional translator.", max_new_tokens=max_new_tokens,
                           temperature=0.0, top_p=1.0, repetition_penalty=1.1)
