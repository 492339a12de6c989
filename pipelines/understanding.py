"""Natural-language understanding with an LLM that is not asked to parse its own free text.

Sentiment and entity types compare label likelihoods, calibrated against content-free inputs; keywords are the
words the model finds most surprising; a summary is one sentence written greedily. Built on any text pipeline
(`TextPipeline` here, `RemoteTextPipeline` on a server): it needs `chat_prompt`, `continuation_logprob`,
`surprisal`, `stream` and `lock` from it.
"""

import contextlib
import re
from collections.abc import Iterator

import numpy as np

from .base import Cancelled, Step, Timer, stream_steps
from .checks import InvalidInput, check_choice, check_text
from .llm_engines import log_softmax

MAX_TEXT_CHARS = 2000  # the input text
MAX_ENTITY_SPANS = 24  # entities typed per request: each costs the model a few passes
UNDERSTAND_TASKS = ("sentiment", "entities", "keywords", "summary")
SENTIMENT_LABELS = ("positive", "negative")
ENTITY_TYPES = ("person", "place", "organization", "product", "date")
# Sentiment-free inputs whose mean label likelihood is the calibration prior (tests/test_pipelines.py measures the
# accuracy on tests/data/sentiment.tsv: 95 % with these, 52 % uncalibrated).
SENTIMENT_FREE = ("N/A", "I bought this last week.", "We went there on Sunday.", "The movie is two hours long.",
                  "The hotel is near the station.", "It is a phone.", "The book has ten chapters.")
STOPWORDS = set("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
off on once only or other our ours out over own same she should so some such than that the their theirs them then
there these they this those through to too under until up very was we were what when where which while who whom why
will with would you your yours also yesterday today tomorrow really very much many new one two get got make made""".split())


class Understanding:
    """Sentiment, entities, keywords and a summary of a text, from the LLM behind `text`."""

    def __init__(self, text):
        self.text = text
        self._calibration: dict[str, np.ndarray] = {}

    @property
    def info(self) -> dict:
        return self.text.info

    @staticmethod
    def check_inputs(text, task) -> str:
        """The input text, stripped; InvalidInput naming `text` or `task` if either is wrong."""
        if not isinstance(task, str):
            raise InvalidInput("task", f"`task` must be one of {', '.join(UNDERSTAND_TASKS)}.")
        check_choice("task", task, UNDERSTAND_TASKS)
        return check_text("text", text, MAX_TEXT_CHARS)

    def _classify(self, user: str, labels: tuple[str, ...], content_free: list[str], prefix: str, key: str,
                  free_prefix: str | None = None) -> dict[str, float]:
        """Label probabilities from label likelihoods, calibrated against content-free inputs (Zhao et al.
        2021, "Calibrate before use"): log p(label | x) - mean log p(label | content-free), softmaxed.
        A small model's raw likelihoods lean hard towards one label; the content-free prior removes that lean."""
        llm = self.text
        continuations = [" " + label for label in labels]
        scores = llm.continuation_logprob(llm.chat_prompt(user, answer_prefix=prefix), continuations)
        if key not in self._calibration:
            free = [llm.continuation_logprob(llm.chat_prompt(x, answer_prefix=free_prefix or prefix), continuations)
                    for x in content_free]
            self._calibration[key] = np.mean(free, axis=0)
        probs = np.exp(log_softmax(scores - self._calibration[key]))
        return {label: round(float(p), 4) for label, p in zip(labels, probs)}

    def sentiment(self, text: str) -> dict:
        def ask(x):
            return f'Review: "{x}"\nIs the sentiment of this review positive or negative?'

        with self.text.lock:
            probs = self._classify(ask(text), SENTIMENT_LABELS, [ask(x) for x in SENTIMENT_FREE], "The sentiment is",
                                   "sentiment")
        return {"label": max(probs, key=probs.get), "probabilities": probs}

    def keywords(self, text: str, top_k: int = 5, progress=None) -> list[dict]:
        """The content words the model finds hardest to predict (most informative), with surprisal in bits."""
        with self.text.lock:
            surprisal, offsets = self.text.surprisal(text, progress)
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
            with self.text.lock:
                user = (f'Text: "{text}"\nWhat kind of thing is "{span}" in this text: a person, place, organization, '
                        'product or date?')
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
        with contextlib.closing(self.text.stream(f"Summarize the following text in one sentence.\n\n{text}",
                                                 max_new_tokens=max_new_tokens, temperature=0.0, top_p=1.0,
                                                 preview=False, repetition_penalty=1.2)) as steps:
            for out in steps:
                if isinstance(out, Step) and progress:
                    progress(out.index, out.total, out.info["token"])
        return out.text

    def understand(self, text: str, task: str) -> dict:
        """One understanding task on `text`; the result is plain JSON-able data."""
        *_, result = self.stream(text, task)
        return result

    def stream(self, text: str, task: str) -> Iterator[Step | dict]:
        """A Step as each part is done (an entity typed, a summary token written, a token read on a remote server),
        then the result. Stopping the iteration (a client gone) stops the work at the next part, also before the
        first: `emit(None)` is asked before anything runs."""
        text = self.check_inputs(text, task)

        def work(emit):
            timer = Timer()
            if not emit(None):
                raise Cancelled

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
        return stream_steps(work, contextlib.nullcontext(), self.text.threads)
