"""Token engines behind `TextPipeline`: the next-token distribution from transformers or from llama.cpp.

An engine knows tokens and logits, nothing else: `logits(ids)` (the next token's, after `ids`) and
`logprobs(ids, start)` (of each token from `start` on). The pipeline does the rest the same way for
both: chat prompts, sampling (`sample`: temperature, top-p, repetition penalty, a numpy generator per
seed), the top-5 candidates of every step, and understanding by label likelihoods.

- `LlamaCppEngine`: a GGUF file run by llama.cpp (`llama-cpp-python`). The bundled SmolLM2 uses it when
  the package is installed: it makes 4-5x the tokens per second of the dequantised float32 model
  and loads in half a second instead of half a minute (bench/bench.py measures both).
- `TransformersEngine`: any causal LM transformers can load (Hub models, and the bundled GGUF
  dequantised when llama-cpp-python is absent).

Both keep the key/value cache of the last sequence and reuse its longest shared prefix, so each new
token costs one position, and a chat's next turn or a second label re-reads only what changed
(`LlamaCppBatcher`, which writes concurrent replies, does the same across its sequences).
Sampling is ours rather than the engine's so that every step has the whole distribution: llama.cpp's
own `logprobs` path is several times slower than sorting the tokens near the top (`likeliest`).
"""

import contextlib
import os
import threading
from pathlib import Path

import numpy as np


def shared_prefix(a, b) -> int:
    """How many leading tokens two id sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if diff.size else n


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def distribution(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax at the sampling temperature (1 for greedy): what the top-5 candidates are read from.

    The exponentials are float32 (numpy vectorises them; 0.2 ms for SmolLM2's 49152 logits against 0.9-1.1 ms in
    float64, once per token and request) and the probabilities float64, summing to 1 as `rng.choice` asks; each
    is within a few millionths of itself computed in float64."""
    z = np.array(logits, dtype=np.float32)
    if temperature > 0:
        z *= np.float32(1.0 / temperature)
    z -= z.max()
    p = np.exp(z, out=z).astype(np.float64)
    return p / p.sum()


def penalise(logits: np.ndarray, seen, penalty: float) -> np.ndarray:
    """The repetition penalty of CTRL (Keskar et al. 2019), as transformers applies it: every token already in
    the sequence has its logit divided by `penalty` if positive, multiplied if negative."""
    if penalty == 1.0:
        return logits
    out = logits.copy()
    ids = np.unique(np.asarray(seen, dtype=np.int64))
    vals = out[ids]
    out[ids] = np.where(vals > 0, vals / penalty, vals * penalty)
    return out


def likeliest(probs: np.ndarray, mass: float = 0.0, at_least: int = 1) -> np.ndarray:
    """Token ids in order of probability, likeliest first: at least `at_least` of them, and enough that their
    probabilities sum to `mass`; exactly the head of the whole vocabulary sorted (ties: the lower id first).

    Why not a partial sort of the whole vocabulary: it costs about a tenth of a batched decode on every token. The
    tokens within a factor 1e-3 of the likeliest (then 1e-6, 1e-12, ...) are nearly always few and hold the mass
    asked for, and only they are sorted (README: How the LLM runs; tests/test_llm_engines.py checks the result
    against a full sort); a flat distribution (temperature 1.5) still sorts thousands."""
    top = probs.max()
    for ratio in (1e-3, 1e-6, 1e-12, 1e-24, 0.0):
        pool = np.flatnonzero(probs >= top * ratio)
        if len(pool) >= at_least and probs[pool].sum() >= mass:
            break
    if mass <= 0 and len(pool) > at_least:  # only the first at_least are wanted, and any tied with the last of them
        pool = pool[probs[pool] >= np.partition(probs[pool], len(pool) - at_least)[len(pool) - at_least]]
    return pool[np.argsort(-probs[pool], kind="stable")]


def top_candidates(probs: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The k likeliest (token id, probability), likeliest first."""
    return [(int(i), float(probs[i])) for i in likeliest(probs, at_least=k)[:k]]


def sample(probs: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy at temperature 0; else a draw from the smallest set of likeliest tokens whose mass reaches top_p."""
    if temperature <= 0:
        return int(np.argmax(probs))
    if top_p < 1.0:
        pool = likeliest(probs, mass=top_p)
        keep = int(np.searchsorted(np.cumsum(probs[pool]), top_p)) + 1
        pool = pool[:keep]
        p = probs[pool] / probs[pool].sum()
        return int(pool[rng.choice(len(pool), p=p)])
    return int(rng.choice(len(probs), p=probs))


def requantized(gguf_path: str, kind: str, cache_dir: str) -> str:
    """`gguf_path` with its weights re-rounded to `kind` ("Q8_0"...) by llama.cpp, made once and kept in `cache_dir`
    (keyed by the source's name, size and mtime); the source itself when it cannot be made (read-only disk...).

    Why Q8_0 for the bundled Q4_1: llama.cpp multiplies a batch of tokens against Q8_0 weights faster, and Q8_0
    keeps every Q4_1 value to within 1/254 of its block's largest (bench/llm_weights.py; README: How the LLM runs)."""
    import ctypes

    import llama_cpp
    from llama_cpp._logger import set_verbose

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", None)
    if ftype is None:
        raise ValueError(f"{kind!r} is not a llama.cpp weight type (Q8_0, Q4_0, Q4_K_M, Q5_K_M, F16...); "
                         "LLAMA_CPP_WEIGHTS=shipped runs the GGUF as it is.")
    source = Path(gguf_path)
    stat = source.stat()
    target = Path(cache_dir) / f"{source.stem}.{stat.st_size}-{stat.st_mtime_ns}.{kind}.gguf"
    if target.exists():
        return str(target)
    partial = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize, params.nthread = True, os.cpu_count() or 1
    set_verbose(False)  # llama.cpp logs every tensor it converts
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params)) != 0:
            raise OSError(f"llama_model_quantize could not write {partial}")
        os.replace(partial, target)  # whole or not at all, for another process loading it meanwhile
    except OSError as exc:
        import warnings

        warnings.warn(f"llama.cpp runs {source.name} as shipped, not as {kind}: {exc}", stacklevel=2)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        return str(source)
    return str(target)


class LlamaCppEngine:
    """A GGUF model in llama.cpp, one context of `n_ctx` positions, `threads` CPU threads."""

    name = "llama.cpp"

    def __init__(self, gguf_path: str, n_ctx: int, threads: int = 1, n_batch: int = 256, vocab_only: bool = False):
        """`vocab_only`: the tokenizer and chat template alone, no weights (a front end whose model runs elsewhere)."""
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = Llama(model_path=gguf_path, n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch, n_threads=threads,
                         n_threads_batch=threads, logits_all=False, vocab_only=vocab_only, verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.weights = Path(gguf_path).name
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.chat_formatter = Jinja2ChatFormatter(
            template, eos_token=self.piece(self.llm.token_eos(), special=True),
            bos_token=self.piece(self.llm.token_bos(), special=True)) if template else None
        self.eos_token_id = self.llm.token_eos()

    # -- text <-> tokens --------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def decode(self, ids, special: bool = False) -> str:
        """The text of `ids`; special tokens (<|im_end|>...) left out unless `special`."""
        return self.llm.detokenize(list(ids), special=special).decode("utf-8", errors="replace")

    def piece(self, token_id: int, special: bool = True) -> str:
        """One token's text, a special one as its name ("<|im_end|>": the model would stop), as transformers shows it."""
        return self._piece_bytes(token_id, special).decode("utf-8", errors="replace")

    def _piece_bytes(self, token_id: int, special: bool = False) -> bytes:
        """One token's bytes (`LlamaModel.token_to_piece` returns its whole 32-byte buffer, NULs and all)."""
        return self.llm._model.detokenize([int(token_id)], special=special)

    def token_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """`text`'s tokens (special markers read as plain text) and each token's (start, end) character offsets."""
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        lengths = np.array([len(self._piece_bytes(i)) for i in ids], dtype=np.int64)
        ends = np.cumsum(lengths)
        char_at = np.cumsum([0] + [len(c.encode("utf-8")) for c in text])  # the byte where each character starts

        def char(byte: int) -> int:
            return int(np.searchsorted(char_at, byte, side="right") - 1)

        return ids, [(char(e - n), char(e - 1) + 1) for e, n in zip(ends.tolist(), lengths.tolist())]

    def chat_text(self, messages: list[dict]) -> str | None:
        """The model's chat template (from the GGUF's metadata), ending where the assistant starts."""
        return self.chat_formatter(messages=messages).prompt if self.chat_formatter else None

    def is_end(self, token_id: int) -> bool:
        from llama_cpp import llama_vocab_is_eog

        return bool(llama_vocab_is_eog(self.llm._model.vocab, int(token_id)))

    # -- logits -----------------------------------------------------------------------------------
    def _rewind(self, ids, keep_last: int) -> int:
        """Drop the cached positions that `ids` does not share (at least `keep_last` of `ids` are re-read)."""
        n = min(shared_prefix(self.llm.input_ids[: self.llm.n_tokens], ids), len(ids) - keep_last)
        self.llm._ctx.kv_cache_seq_rm(-1, n, -1)
        self.llm.n_tokens = n
        return n

    def _feed(self, tokens, logits_all: bool):
        """Decode `tokens` after the cache, `n_batch` at a time; yield (first position, logits rows) per chunk."""
        llm = self.llm
        for i in range(0, len(tokens), llm.n_batch):
            chunk = list(tokens[i:i + llm.n_batch])
            llm._batch.set_batch(batch=chunk, n_past=llm.n_tokens, logits_all=logits_all)
            llm._ctx.decode(llm._batch)
            llm.input_ids[llm.n_tokens:llm.n_tokens + len(chunk)] = chunk
            start = llm.n_tokens
            llm.n_tokens += len(chunk)
            if logits_all:
                rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), self.n_vocab))
                yield start, rows
            elif i + llm.n_batch >= len(tokens):
                yield start + len(chunk) - 1, np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(1, self.n_vocab))

    def logits(self, ids) -> np.ndarray:
        """The next token's logits after `ids` (a copy)."""
        n = self._rewind(ids, keep_last=1)
        *_, (_, rows) = self._feed(ids[n:], logits_all=False)
        return rows[-1].copy()

    def logprobs(self, ids, start: int) -> np.ndarray:
        """log p(ids[i] | ids[:i]) for i = start .. len(ids) - 1 (start >= 1)."""
        n = self._rewind(ids, keep_last=len(ids) - start + 1)
        out = np.empty(len(ids) - start)
        for first, rows in self._feed(ids[n:], logits_all=True):
            for r in range(len(rows)):
                pos = first + r  # these logits predict ids[pos + 1]
                if start <= pos + 1 < len(ids):
                    out[pos + 1 - start] = log_softmax(rows[r])[ids[pos + 1]]
        return out


class TransformersEngine:
    """A transformers causal LM with a DynamicCache kept between calls."""

    name = "transformers"

    def __init__(self, path: str, gguf_file: str | None, device: str, vocab_only: bool = False):
        """`vocab_only`: the tokenizer and chat template alone, no weights (a front end whose model runs elsewhere)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        self.model = None
        if not vocab_only:
            import torch

            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs).to(device).eval()
        self.device = device
        self.weights = f"{Path(path).name}/{gguf_file}" if gguf_file else path
        try:
            config = self.model.generation_config if self.model is not None else GenerationConfig.from_pretrained(path, **kwargs)
        except OSError:  # a model without generation_config.json
            config = GenerationConfig()
        eos = config.eos_token_id
        self.ends = set(eos if isinstance(eos, list) else [eos] if eos is not None else []) | {self.tokenizer.eos_token_id}
        self.eos_token_id = self.tokenizer.eos_token_id
        self.cache, self.cached = None, []

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def decode(self, ids, special: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=not special)

    def piece(self, token_id: int) -> str:
        return self.tokenizer.decode([int(token_id)])

    def token_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        return enc.input_ids, [tuple(o) for o in enc.offset_mapping]

    def chat_text(self, messages: list[dict]) -> str | None:
        if not self.tokenizer.chat_template:
            return None
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def is_end(self, token_id: int) -> bool:
        return int(token_id) in self.ends

    def _forward(self, ids, keep_last: int):
        """Logits (positions, vocab) for ids[n:], where n is the cached prefix kept (at least keep_last re-read)."""
        import torch
        from transformers import DynamicCache

        n = min(shared_prefix(self.cached, ids), len(ids) - keep_last)
        if self.cache is None or n == 0:
            self.cache, n = DynamicCache(), 0
        elif n < len(self.cached):
            self.cache.crop(n - len(self.cached))  # a negative count: drop that many positions from the end
        try:
            with torch.no_grad():
                out = self.model(torch.tensor([list(ids[n:])], device=self.device), cache=self.cache, use_cache=True)
        except BaseException:
            self.cache, self.cached = None, []  # it may hold part of this call: start afresh next time
            raise
        self.cached = list(ids)
        return n, out.logits[0].float().cpu().numpy()

    def logits(self, ids) -> np.ndarray:
        return self._forward(ids, keep_last=1)[1][-1]

    def logprobs(self, ids, start: int) -> np.ndarray:
        n, rows = self._forward(ids, keep_last=len(ids) - start + 1)
        lp = log_softmax(rows[start - 1 - n:len(ids) - 1 - n])
        return lp[np.arange(len(ids) - start), np.asarray(ids[start:])]


class LlamaCppBatcher:
    """Continuous batching on llama.cpp: up to `slots` generations decode together, one token each per
    `llama_decode`, in a context of their own (sharing the engine's weights). A small model's decode costs about
    the same for one sequence as for eight, since reading the weights dominates: eight concurrent requests
    come out several times faster than eight in turn, each with its own seed, steps and cancel.

    `generate(ids, on_logits)` blocks until that request ends: `on_logits(logits)` gets the next-token logits
    after each step and returns the chosen token, or None to stop. Requests join and leave between decodes;
    a request waits while the key/value cells (`n_ctx`, shared by all sequences) cannot hold its prompt plus
    `reserve` new tokens.

    Each decode uses `threads_per_request` CPU threads per request in it, up to `max_threads` (all cores): one
    request alone runs as it would unbatched; several share the cores.

    A prompt is read only from where it stops matching one the cells already hold (prefix caching, as vLLM's): a
    finished request's sequence keeps its cells until its id or its room is needed, and a new request starts from
    the longest prefix of its prompt held by any sequence, running or kept, shared through `llama_memory_seq_cp`
    (in the unified cache the cells are not copied, only marked). A chat's next turn reads only the new message
    (and the reply's last token), and every request skips the chat template's system prompt.

    Batching changes the arithmetic slightly (the other sequences' cells are in the attention's sums, and a token
    read in a batch of one rounds differently from one read in a batch of many), so a seed's reply can differ in
    late tokens between runs beside others or after a cached prefix: the batch invariance that vLLM and TGI do
    not promise either.
    """

    def __init__(self, engine: "LlamaCppEngine", slots: int, n_ctx: int, threads_per_request: int = 1,
                 max_threads: int | None = None, n_batch: int = 256):
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, n_batch, n_batch
        params.n_seq_max, params.kv_unified = slots, True
        self.threads_per_request, self.max_threads = threads_per_request, max_threads or os.cpu_count() or 1
        self.threads = params.n_threads = params.n_threads_batch = threads_per_request
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as the engine's context (Llama's default)
        self.ctx = _internals.LlamaContext(model=engine.llm._model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self.n_vocab, self.n_ctx, self.n_batch, self.slots = engine.n_vocab, n_ctx, n_batch, slots
        self.free = list(range(slots))  # sequence ids not in use
        self.kept: dict[int, list[int]] = {}  # free sequence id -> the tokens its cells still hold, oldest first
        self.waiting: list[dict] = []
        self.active: list[dict] = []
        self.cv = threading.Condition()
        self.thread: threading.Thread | None = None
        self.tokens_read = 0  # tokens decoded so far, prompts and replies (what prefix caching saves shows here)

    def generate(self, ids: list[int], reserve: int, on_logits) -> None:
        if len(ids) + reserve > self.n_ctx:
            raise ValueError(f"the prompt and max_new_tokens need {len(ids) + reserve} positions; the limit is {self.n_ctx}")
        # tokens: the prompt, then each token chosen; pos: how many of them the sequence's cells hold (read so far)
        request = {"tokens": list(ids), "pos": 0, "need": len(ids) + reserve, "on_logits": on_logits,
                   "done": threading.Event(), "error": None}
        with self.cv:
            self.waiting.append(request)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, daemon=True, name="llama-batcher")
                self.thread.start()
            self.cv.notify()
        request["done"].wait()
        if request["error"] is not None:
            raise request["error"]

    def _admit(self) -> None:
        """Move waiting requests into free sequences while the cells reserved by all fit in n_ctx (kept prefixes
        are forgotten, oldest first, to make room), each starting from the longest prefix of its prompt held."""
        while self.waiting and self.free:
            request = self.waiting[0]
            used = sum(r["need"] for r in self.active)
            while self.kept and used + sum(map(len, self.kept.values())) + request["need"] > self.n_ctx:
                self._forget(next(iter(self.kept)))
            if used + request["need"] > self.n_ctx:
                return
            self.waiting.pop(0)
            ids = request["tokens"]
            held = [(r["seq"], r["tokens"][: r["pos"]]) for r in self.active] + list(self.kept.items())
            # The prompt's last token is read in any case: its logits give the first new token.
            donor, reuse = max(((seq, min(shared_prefix(tokens, ids), len(ids) - 1)) for seq, tokens in held),
                               key=lambda d: d[1], default=(None, 0))
            seq = donor if reuse and donor in self.kept else next((s for s in self.free if s not in self.kept), None)
            if seq is None:  # every free sequence keeps a prefix: take the oldest
                seq = next(iter(self.kept))
            self.free.remove(seq)
            self.kept.pop(seq, None)
            if seq == donor:
                self.ctx.kv_cache_seq_rm(seq, reuse, -1)
            else:
                self.ctx.kv_cache_seq_rm(seq, -1, -1)
                if reuse:
                    self.ctx.kv_cache_seq_cp(donor, seq, 0, reuse)
            request.update(seq=seq, pos=reuse)
            self.active.append(request)

    def _forget(self, seq: int) -> None:
        """Free a kept sequence's cells."""
        self.ctx.kv_cache_seq_rm(seq, -1, -1)
        del self.kept[seq]

    def forget_kept(self) -> None:
        """Free every kept prefix: the next prompts are read whole (tests and benchmarks compare the two)."""
        with self.cv:
            for seq in list(self.kept):
                self._forget(seq)

    def _finish(self, request: dict, error: BaseException | None = None) -> None:
        """End a request; its sequence keeps the cells of the tokens it read (tokens[:pos]) unless it failed."""
        self.active.remove(request)
        self.free.append(request["seq"])
        if error is None and request["pos"]:
            self.kept[request["seq"]] = request["tokens"][: request["pos"]]
        else:
            self.ctx.kv_cache_seq_rm(request["seq"], -1, -1)
        request["error"] = error
        request["done"].set()

    def _loop(self) -> None:
        from llama_cpp import llama_decode, llama_get_logits_ith

        while True:
            with self.cv:
                self._admit()
                while not self.active:
                    if not self.cv.wait(timeout=30) and not self.waiting:
                        self.thread = None
                        return  # idle: the next request starts a new loop
                    self._admit()
            # One batch: each active request's tokens not yet read (a prompt, in n_batch pieces; else the last token).
            b, n, readers = self.batch.batch, 0, []
            for request in list(self.active):
                tokens, pos = request["tokens"], request["pos"]
                take = tokens[pos: pos + self.n_batch - n]
                if not take:
                    continue
                for j, token in enumerate(take):
                    b.token[n], b.pos[n], b.n_seq_id[n] = token, pos + j, 1
                    b.seq_id[n][0] = request["seq"]
                    b.logits[n] = pos + j == len(tokens) - 1
                    n += 1
                request["pos"] += len(take)
                if request["pos"] == len(tokens):
                    readers.append((request, n - 1))
                if n == self.n_batch:
                    break
            b.n_tokens = n
            threads = min(self.max_threads, self.threads_per_request * len(self.active))
            if threads != self.threads:
                self.ctx.set_n_threads(threads, threads)
                self.threads = threads
            code = llama_decode(self.ctx.ctx, b)
            self.tokens_read += n
            if code == 1 and self.kept:  # no room in the cells for the batch: forget the kept prefixes, try again
                self.forget_kept()
                code = llama_decode(self.ctx.ctx, b)
            with self.cv:
                if code != 0:
                    for request in list(self.active):
                        self._finish(request, RuntimeError(f"llama_decode returned {code}"))
                    continue
                for request, row in readers:
                    logits = np.ctypeslib.as_array(llama_get_logits_ith(self.ctx.ctx, row), shape=(self.n_vocab,)).copy()
                    try:
                        token = request["on_logits"](logits)
                    except BaseException as exc:  # noqa: BLE001  (handed to the request's own thread)
                        self._finish(request, exc)
                        continue
                    if token is None:
                        self._finish(request)
                    else:
                        request["tokens"].append(token)
