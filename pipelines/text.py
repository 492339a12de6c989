"""The LLM: a causal LM as a stream of tokens, one Step per token, for generation and chat.

Generation is a loop over one token engine (pipelines/llm_engines.py: llama.cpp for the bundled GGUF when
llama-cpp-python is installed, transformers otherwise): each step reads the next-token logits, keeps the
distribution (top-5 candidates and the chosen token's probability), samples with the request's seed and emits a
`Step` built by `token_step`, as the remote server's stream does (pipelines/remote.py). Understanding and
translation are jobs built on this pipeline (pipelines/understanding.py, pipelines/translation.py); they use its
scoring primitives: `chat_prompt`, `continuation_logprob` and `surprisal`.
"""

import functools
import importlib.util
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .base import LOAD_LOCK, Step, TextOutput, Timer, Tuning, default_device, stream_steps
from .checks import InvalidInput, check_range, check_seed, check_text
from .llm_engines import distribution, penalise, sample, top_candidates
from .specs import ModelSpec, resolve_path

MAX_PROMPT_CHARS = 4000  # the newest message, and the system prompt
MAX_HISTORY_CHARS = 32000  # a chat's earlier turns, all together
MAX_HISTORY_TURNS = 200  # and their number (empty turns cost the model as much as short ones)
MAX_CONTEXT_TOKENS = 2048  # the prompt the model reads; the oldest turns of a long chat are left out to fit
MAX_NEW_TOKENS = 2048
ENGINES = ("auto", "llama.cpp", "transformers")
# The key/value cells llama.cpp's batch shares: room for two of the longest requests or many short ones.
BATCH_CONTEXT_TOKENS = 2 * (MAX_CONTEXT_TOKENS + MAX_NEW_TOKENS)


def find_gguf(package: str) -> tuple[str, str] | None:
    """(folder, file) of the .gguf shipped inside a pip package, without importing the package."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(list(found.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    return (str(folder), files[0].name) if files else None


@functools.cache
def llama_cpp_problem() -> str | None:
    """Why the installed llama-cpp-python cannot run here, or None. Not installed; or built with llama.cpp's AMX
    kernels, whose first decode crashes the whole process on the CPUs that have AMX (ggml-org/llama.cpp#20824): a
    plain `pip install llama-cpp-python` on such a CPU builds them (the Makefile's build leaves them out:
    llama-cpp.cmake). Asked of ggml itself, without importing llama_cpp."""
    import ctypes

    found = importlib.util.find_spec("llama_cpp")
    if found is None or not found.submodule_search_locations:
        return "llama-cpp-python is not installed (pip install llama-cpp-python)"
    folder = Path(list(found.submodule_search_locations)[0]) / "lib"
    for name in ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll"):
        if (folder / name).exists():
            try:
                has_amx = ctypes.CDLL(str(folder / name)).ggml_cpu_has_amx_int8()
            except (OSError, AttributeError):
                return None  # an older or a differently built ggml: nothing to say
            if has_amx:
                return ("the installed llama-cpp-python was built with llama.cpp's AMX kernels, which crash on this "
                        "CPU (ggml-org/llama.cpp#20824); rebuild it with `make install` (llama-cpp.cmake leaves them "
                        "out) or CMAKE_ARGS=\"-DGGML_NATIVE=OFF\"")
    return None


def has_llama_cpp() -> bool:
    """llama-cpp-python is installed and can run here (llama_cpp_problem)."""
    problem = llama_cpp_problem()
    if problem and importlib.util.find_spec("llama_cpp") is not None:
        import warnings

        warnings.warn(f"The LLM runs on transformers: {problem}.", stacklevel=2)
    return problem is None


def token_step(index: int, total: int, elapsed: float, seconds: float, token: str, token_id: int | None,
               probability: float | None, candidates: list[tuple[str, int | None, float | None]],
               preview: str | None) -> Step:
    """One LLM step, as every text stream (local engine or remote server) makes it: the token chosen, its
    probability, the top candidates [(token, token_id, probability)], this step's seconds, the text so far."""
    rounded = (lambda p: None if p is None else round(float(p), 4))
    info = {"token": token, "token_id": token_id, "probability": rounded(probability),
            "candidates": [{"token": t, "token_id": i, "probability": rounded(p)} for t, i, p in candidates],
            "seconds": round(seconds, 4)}
    return Step(index=index, total=total, elapsed=elapsed, preview=preview, info=info)


class TextPipeline:
    task = "text"

    def __init__(self, spec: ModelSpec, missing: str | None = None, device: str | None = None,
                 tuning: Tuning | None = None):
        """`tuning.llm_engine`: "llama.cpp" (needs a GGUF file and llama-cpp-python), "transformers", or "auto"
        (llama.cpp where it can run this model, else transformers)."""
        self.spec = spec
        self.missing = missing
        self._device = device
        self.tuning = tuning or Tuning()
        self.engine_choice = self.tuning.llm_engine
        if self.engine_choice not in ENGINES:
            raise ValueError(f"Unknown LLM engine {self.engine_choice!r}; valid: {', '.join(ENGINES)}.")
        self.lock = threading.Lock()  # the engine's own context: understanding, and generation when not batched
        self.slots = threading.BoundedSemaphore(max(1, self.tuning.llm_slots))  # generations at once on the batcher
        self.batcher = None  # llama.cpp's continuous batching (llm_slots > 1), made by load()
        self._engine = None

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
        """The GGUF file llama.cpp runs: the source's, as `tuning.llama_cpp_weights` says (made on first call; see
        llm_engines.requantized). A llama.cpp server meant to give the same replies should load this file."""
        from .llm_engines import requantized

        path, gguf_file = self.source()
        if not gguf_file:
            raise RuntimeError(f"{self.spec.model_id} has no GGUF file for llama.cpp.")
        gguf = str(Path(path) / gguf_file)
        weights = self.tuning.llama_cpp_weights
        return gguf if weights == "shipped" else requantized(gguf, weights, self.tuning.cache_dir)

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
                    raise RuntimeError(f"The llama.cpp engine needs a GGUF model and a llama-cpp-python that runs here; "
                                       f"{self.spec.model_id} has "
                                       f"{'no GGUF file' if not gguf_file else 'one, but ' + llama_cpp_problem()}.")
                from .llm_engines import LlamaCppBatcher, LlamaCppEngine

                engine = LlamaCppEngine(self.llama_cpp_file(), n_ctx=MAX_CONTEXT_TOKENS + MAX_NEW_TOKENS,
                                        threads=max(1, self.tuning.torch_threads))
                if self.batched:
                    self.batcher = LlamaCppBatcher(engine, self.tuning.llm_slots, n_ctx=BATCH_CONTEXT_TOKENS,
                                                   threads_per_request=max(1, self.tuning.torch_threads))
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
        return self.tuning.llm_slots > 1 and self.engine_name() == "llama.cpp"

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

    @property
    def threads(self) -> int | None:
        """Intra-op torch threads for a request's worker: the transformers engine on a CPU only."""
        return self.tuning.torch_threads if self.engine_name() == "transformers" and self.device == "cpu" else None

    # -- prompts ---------------------------------------------------------------------------------
    def render_chat(self, messages: list[dict]) -> str:
        """The conversation as the model reads it, ending where the assistant starts."""
        text = self.engine.chat_text(messages)
        if text is None:  # a model without a chat template
            text = "".join(f"{m['role'].title()}: {m['content']}\n" if m["role"] != "system" else f"{m['content']}\n\n"
                           for m in messages) + "Assistant:"
        return text

    def chat_ids(self, user: str, system: str | None = None, answer_prefix: str = "",
                 history: list[dict] | None = None) -> list[int]:
        """Token ids of a chat ending where the assistant starts (plus `answer_prefix`): `history`'s earlier turns
        ({"role": "user" | "assistant", "content": text}), then `user`. The oldest turns are left out, a
        user/assistant pair at a time, until the prompt fits MAX_CONTEXT_TOKENS (the system prompt and the new
        message always stay).

        Linear in the history: each turn's text is tokenized once to estimate its share, the turns that fit are
        chosen from the newest back, and the conversation is rendered and tokenized once more (again only in the
        rare case where the chat template's own tokens tip it over)."""
        head = [{"role": "system", "content": system}] if system else []
        last = [{"role": "user", "content": user}]
        turns = list(history or [])
        if turns:
            fixed = len(self.engine.encode(self.render_chat(head + last) + answer_prefix))
            overhead = 8  # a turn's role and separator tokens in common chat templates
            cost = [len(self.engine.encode(t["content"])) + overhead for t in turns]
            budget, keep = MAX_CONTEXT_TOKENS - fixed, len(turns)
            while keep and sum(cost[len(turns) - keep:]) > budget:
                keep -= 2 if keep > 1 and turns[len(turns) - keep + 1]["role"] == "assistant" else 1
            turns = turns[len(turns) - keep:] if keep > 0 else []
        while True:
            ids = self.engine.encode(self.render_chat(head + turns + last) + answer_prefix)
            if len(ids) <= MAX_CONTEXT_TOKENS or not turns:
                return ids
            turns = turns[2:] if len(turns) > 1 and turns[1]["role"] == "assistant" else turns[1:]

    @staticmethod
    def check_history(history) -> list[dict]:
        """A chat's earlier turns: a list of {"role": "user" | "assistant", "content": text}; else InvalidInput."""
        shape = "a list of {'role': 'user' or 'assistant', 'content': text} messages"
        if history is None:
            return []
        if not isinstance(history, list):
            raise InvalidInput("history", f"`history` must be {shape}; got {type(history).__name__}.")
        if len(history) > MAX_HISTORY_TURNS:
            raise InvalidInput("history", f"`history` holds {len(history)} messages; the limit is {MAX_HISTORY_TURNS}. "
                                          "Start a new chat.")
        total, turns = 0, []
        for i, m in enumerate(history):
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):  # OpenAI-style parts: [{"type": "text", "text": ...}]
                parts = [part.get("text") for part in content if isinstance(part, dict)]
                content = "".join(parts) if all(isinstance(t, str) for t in parts) else None
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or not isinstance(content, str):
                raise InvalidInput("history", f"`history` message {i} is not {{'role': 'user' or 'assistant', "
                                              f"'content': text}}: `history` must be {shape}.")
            check_text("history", content, MAX_HISTORY_CHARS, optional=True)
            total += len(content)
            turns.append({"role": m["role"], "content": content})
        if total > MAX_HISTORY_CHARS:
            raise InvalidInput("history", f"`history` holds {total} characters; the limit is {MAX_HISTORY_CHARS}. "
                                          "Start a new chat.")
        return turns

    # -- generation ------------------------------------------------------------------------------
    def check_inputs(self, prompt, system_prompt, max_new_tokens, temperature, top_p, seed, history=None) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        check_text("system_prompt", system_prompt, MAX_PROMPT_CHARS, optional=True)
        check_range("max_new_tokens", max_new_tokens, 1, MAX_NEW_TOKENS, integer=True)
        check_range("temperature", temperature, 0.0, 2.0)
        check_range("top_p", top_p, 0.05, 1.0)
        check_seed(seed)
        self.check_history(history)

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
            if not emit(None):  # left while waiting for a slot: not even the prompt is read
                return TextOutput("", 0.0, [], "cancelled")
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
                steps.append(token_step(len(new), int(max_new_tokens), now, now - last[0], engine.piece(token), token,
                                        probs[token], [(engine.piece(i), i, p) for i, p in top_candidates(probs)],
                                        engine.decode(new) if preview else None))
                last[0] = now
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
        return stream_steps(work, self.slots if self.batched else self.lock, self.threads)

    # -- scoring, for understanding (pipelines/understanding.py) ---------------------------------------
    def chat_prompt(self, user: str, answer_prefix: str = ""):
        """The chat prompt `continuation_logprob` reads: token ids here, text for a remote server."""
        return self.chat_ids(user, answer_prefix=answer_prefix)

    def continuation_logprob(self, prefix: list[int], continuations: list[str]) -> np.ndarray:
        """log p(continuation | prefix) for each continuation, summed over its tokens (the prefix is read once:
        the engine keeps it cached between continuations). The caller holds `lock`."""
        return np.array([self.engine.logprobs(prefix + self.engine.encode(c), start=len(prefix)).sum()
                         for c in continuations])

    def surprisal(self, text: str, progress=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Each token's surprisal in bits (-log2 p, reading `text` after an end-of-text token) and its (start, end)
        character offsets in `text` (one pass here: `progress` is for engines that read a token at a time).
        The caller holds `lock`."""
        ids, offsets = self.engine.token_spans(text)
        return -self.engine.logprobs([self.engine.eos_token_id] + ids, start=1) / math.log(2), offsets
