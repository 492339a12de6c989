"""Text made by diffusion: a masked-diffusion language model as a stream of refinement steps.

An LLM writes one token per step, left to right, and never takes one back. A diffusion language
model (LLaDA, DiffusionGemma) starts from a canvas of `gen_length` masked positions and, at every
step, predicts *all* of them at once, then commits the ones it is most sure of, wherever they are.
Each `Step` here is one such refinement: its preview is the whole canvas (committed tokens as text,
masked positions as MASK_GLYPH, end-of-text as END_GLYPH), its info what that step committed and revised.

The knobs between "one token per step" and "the whole text at once", all diffusers' own:
- `block_length`: the canvas is written block after block, left to right, any order inside a block
  (1: strictly left to right, as an LLM; gen_length: the whole canvas in parallel);
- `threshold`: a step also commits every token surer than this (fewer steps for easy text; Fast-dLLM);
- `editing_threshold`: a committed token is replaced when the model is this sure it is wrong (LLaDA 2.1).

Built on diffusers' `LLaDA2Pipeline` + `BlockRefinementScheduler` (bundled tiny ModernBERT and the Hub
dLLM ModernBERT chat models, all `ModernBertForMaskedLM`) and `DiffusionGemmaPipeline` (whole canvas only),
read step by step through `callback_on_step_end`. Two loops are our own, on the same scheduler's `step`:
infilling (the pipeline always starts from an all-masked canvas) and the review passes after the last step
when editing is on (the pipeline ends a block at its last scheduled step, so the tokens committed there,
the least sure ones, would never be read again).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch is imported on first use
    pass

from .base import Cancelled, Step, TextOutput, Timer, stream_steps
from .checks import MAX_PROMPT_CHARS, InvalidInput, check_multiple, check_range, check_seed, check_text
from .diffusion import DiffusionModel

MASK_GLYPH = "▒"  # how a still-masked position looks in previews
END_GLYPH = " ·"  # a position committed to end-of-text (the answer is shorter than gen_length): visible, not text
GAP = "_"  # one missing token in an infilling template
MAX_TEMPLATE_CHARS = 400
REVIEW_PASSES = 4  # with editing on: passes over the finished canvas, until one revises nothing


@dataclass
class TextDiffusionOutput(TextOutput):
    run: dict = field(default_factory=dict)  # the run's numbers and decoding order (see `Recorder.summary`)


def token_piece(tokenizer, token_id: int) -> str:
    """How one token reads inside running text: word-level vocabularies (the bundled model) get a space
    before each word, byte-level / sentencepiece ones keep the space their token carries."""
    token = tokenizer.convert_ids_to_tokens(int(token_id))
    if token is None:
        return ""
    if token in tokenizer.all_special_tokens:
        return ""
    if token[:1] in ("Ġ", "▁"):
        return " " + tokenizer.convert_tokens_to_string([token]).strip()
    if word_level(tokenizer):
        return token if token in ",.:;!?" else " " + token
    return tokenizer.convert_tokens_to_string([token])


def word_level(tokenizer) -> bool:
    return getattr(tokenizer, "backend_tokenizer", None) is not None and \
        type(tokenizer.backend_tokenizer.model).__name__ == "WordLevel"


class Recorder:
    """Turns each refinement (the canvas after it, what it committed and revised) into a Step for the consumer,
    and keeps the run's numbers: steps, forward passes, tokens per pass, when each position was committed and
    revised, and when the answer settled (the last step at which any position's most likely token changed).

    Step.info: `committed` [{position, token, probability}] (surest first), `revised` [{position, token, previous,
    probability}], `masks_left`, `seconds` (this step), `canvas` (one piece of text per position), `block` [start, end)
    (the positions refined), `confidence` (per position: the model's top probability at this step, None outside the
    block), and the run so far: `forward_passes`, `tokens_committed`, `tokens_per_pass`, `tokens_per_second`.
    """

    def __init__(self, tokenizer, gen_length: int, total: int, mask_id: int, emit, timer, knobs: dict):
        self.tokenizer, self.n, self.total, self.mask_id = tokenizer, gen_length, total, mask_id
        self.emit, self.timer, self.knobs = emit, timer, knobs
        self.ends = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        self.before = [mask_id] * gen_length  # the canvas before the step being recorded
        self.likeliest: list = [None] * gen_length  # each position's most likely token, as last seen
        self.committed_at: list = [None] * gen_length
        self.commit_probability: list = [None] * gen_length
        self.revised_at: list[list[int]] = [[] for _ in range(gen_length)]
        self.settled_at, self.tokens, self.steps, self.last = 0, 0, [], timer()
        self.pieces: dict[int, str] = {}  # token id -> its piece: a step reads every position, most as the step before

    def piece(self, token_id: int) -> str:
        """How a canvas position reads: its token's piece, MASK_GLYPH while masked, END_GLYPH for end-of-text."""
        if token_id not in self.pieces:
            self.pieces[token_id] = MASK_GLYPH if token_id == self.mask_id else END_GLYPH if token_id in self.ends \
                else token_piece(self.tokenizer, token_id)
        return self.pieces[token_id]

    def name(self, token_id: int, piece: str) -> str:
        """The token as text; its raw form for end-of-text, specials and a part of a character (bytes)."""
        readable = token_id not in self.ends and piece.strip() and "\ufffd" not in piece
        return piece.strip() if readable else self.tokenizer.convert_ids_to_tokens(token_id)

    def __call__(self, canvas: list[int], committed: list[int], revised: list[int], probs: dict, block: tuple[int, int],
                 likeliest: dict | None = None, confidence: dict | None = None) -> Step:
        """Record one step. `probs`, `likeliest`, `confidence`: {position: value} over the block refined (the sampled
        token's probability, the most likely token, its probability)."""
        index, now = len(self.steps) + 1, self.timer()
        pieces = [self.piece(t) for t in canvas]
        committed = sorted(committed, key=lambda p: -float(probs[p]))
        for p in committed:
            self.committed_at[p], self.commit_probability[p] = index, round(float(probs[p]), 4)
        for p in revised:
            self.revised_at[p].append(index)
        if likeliest is not None and any(self.likeliest[p] != t for p, t in likeliest.items()):
            self.settled_at = index
            self.likeliest = [likeliest.get(p, t) for p, t in enumerate(self.likeliest)]
        self.tokens += len(committed)
        seconds = now - self.last
        info = {"committed": [{"position": p, "token": self.name(canvas[p], pieces[p]), "probability": round(float(probs[p]), 4)}
                              for p in committed],
                "revised": [{"position": p, "token": self.name(canvas[p], pieces[p]),
                             "previous": self.name(self.before[p], self.piece(self.before[p])),
                             "probability": round(float(probs[p]), 4)} for p in revised],
                "masks_left": sum(t == self.mask_id for t in canvas), "seconds": round(seconds, 4), "canvas": pieces,
                "block": list(block),
                "confidence": [None if confidence is None or p not in confidence else round(float(confidence[p]), 4)
                               for p in range(self.n)],
                "forward_passes": index, "tokens_committed": self.tokens, "tokens_per_pass": round(self.tokens / index, 3),
                "tokens_per_second": round(self.tokens / max(now, 1e-9), 1)}
        self.before, self.last = list(canvas), now
        step = Step(index=index, total=max(self.total, index), elapsed=now, preview="".join(pieces).strip(), info=info)
        self.steps.append(step)
        if not self.emit(step):
            raise Cancelled()  # LLaDA2Pipeline has no interrupt flag: leave its loop from here
        return step

    def output(self, sequence: list[int], **extra) -> TextDiffusionOutput:
        """The final text (up to the first end-of-text) and the run's numbers."""
        tokenizer = self.tokenizer
        if tokenizer.eos_token_id in sequence:
            sequence = sequence[:sequence.index(tokenizer.eos_token_id)]
        seconds = self.timer()
        steps = len(self.steps)
        run = {**self.knobs, "steps": steps, "forward_passes": steps, "tokens_committed": self.tokens,
               "tokens_per_pass": round(self.tokens / max(steps, 1), 3), "seconds": round(seconds, 4),
               "tokens_per_second": round(self.tokens / max(seconds, 1e-9), 1),
               "committed_per_step": [len(s.info["committed"]) for s in self.steps],
               "revisions": sum(len(s.info["revised"]) for s in self.steps), "settled_at": self.settled_at,
               "committed_at": self.committed_at, "commit_probability": self.commit_probability,
               "revised_at": self.revised_at, **extra}
        text = tokenizer.decode(sequence, skip_special_tokens=True).strip()
        return TextDiffusionOutput(text=text, seconds=seconds, steps=self.steps, finish_reason="stop", run=run)


class TextDiffusionPipeline(DiffusionModel):
    """Spec, lazy locked loading and `info` as every diffusion family (DiffusionModel); a stream of refinements."""

    task = "text_diffusion"
    LIMITS = {"gen_length": (8, 512, 8)}  # (low, high, multiple) where the spec gives none

    def load(self, path: str):
        """A DiffusionGemma checkpoint through DiffusionGemmaPipeline; any masked LM (a bundled LLaDA2Pipeline
        folder, a Hub ModernBERT / LLaDA-style model) through LLaDA2Pipeline, components loaded one by one."""
        from diffusers import BlockRefinementScheduler, DiffusionGemmaPipeline, LLaDA2Pipeline
        from transformers import AutoConfig, AutoModelForMaskedLM, AutoProcessor, AutoTokenizer

        folder = Path(path)
        sub = (lambda name: str(folder / name)) if (folder / "model_index.json").exists() else (lambda name: path)
        config = AutoConfig.from_pretrained(sub("model"))
        if config.model_type == "diffusion_gemma":
            import inspect

            from transformers import DiffusionGemmaForBlockDiffusion
            from transformers.models.diffusion_gemma.modeling_diffusion_gemma import DiffusionGemmaDecoderModel

            mask_fn = DiffusionGemmaDecoderModel.create_diffusion_decoder_attention_mask
            if "past_key_values" not in inspect.signature(mask_fn).parameters:
                import diffusers
                import transformers

                raise RuntimeError(
                    f"DiffusionGemmaPipeline (diffusers {diffusers.__version__}) calls the DiffusionGemma decoder's "
                    f"attention-mask builder with past_key_values, which transformers {transformers.__version__} does "
                    "not take: this pair cannot run DiffusionGemma. Use --text-diffusion-model "
                    "dllm-hub/ModernBERT-large-chat-v0.1, or versions of the two that match.")
            model = DiffusionGemmaForBlockDiffusion.from_pretrained(sub("model"), dtype=self.dtype)
            scheduler = BlockRefinementScheduler(block_length=config.canvas_length, threshold=1.0)
            try:  # the released checkpoint's processor also takes images
                processor = AutoProcessor.from_pretrained(sub("processor"))
            except OSError:  # a text-only checkpoint: its tokenizer does all the pipeline asks (chat template, decode)
                processor = AutoTokenizer.from_pretrained(sub("tokenizer"))
            return DiffusionGemmaPipeline(model=model, scheduler=scheduler, processor=processor)
        model = AutoModelForMaskedLM.from_pretrained(sub("model"), dtype=self.dtype).eval()
        tokenizer = AutoTokenizer.from_pretrained(sub("tokenizer"))
        scheduler = BlockRefinementScheduler(threshold=1.0)
        if (folder / "scheduler" / "scheduler_config.json").exists():
            scheduler = BlockRefinementScheduler.from_pretrained(path, subfolder="scheduler")
        return LLaDA2Pipeline(model=model, scheduler=scheduler, tokenizer=tokenizer)

    # -- inputs ----------------------------------------------------------------------------------
    def check_inputs(self, prompt, gen_length, num_inference_steps, seed, temperature, block_length=None,
                     threshold=0.0, editing_threshold=0.0) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        low, high, multiple = self.limits["gen_length"]
        check_range("gen_length", gen_length, low, high, integer=True)
        check_multiple("gen_length", gen_length, multiple)
        check_range("num_inference_steps", num_inference_steps, 1, int(gen_length), integer=True)
        check_seed(seed)
        check_range("temperature", temperature, 0.0, 2.0)
        check_range("block_length", gen_length if block_length is None else block_length, 1, int(gen_length), integer=True)
        check_range("threshold", threshold, 0.0, 1.0)
        check_range("editing_threshold", editing_threshold, 0.0, 1.0)

    @staticmethod
    def check_template(template) -> None:
        check_text("template", template, MAX_TEMPLATE_CHARS)
        if GAP not in template:
            raise InvalidInput("template", f"`template` needs at least one gap: write `{GAP}` for each missing token.")

    def check_infill(self, prompt, template, num_inference_steps, seed, temperature=0.0) -> None:
        """What `infill_stream` checks before it runs (the template's words are checked against the vocabulary once
        the model is loaded)."""
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        self.check_template(template)
        check_range("num_inference_steps", num_inference_steps, 1, self.limits["gen_length"][1], integer=True)
        check_seed(seed)
        check_range("temperature", temperature, 0.0, 2.0)

    def template_ids(self, tokenizer, template: str) -> list[int]:
        """The template as answer tokens, the mask token at each `_`; given words the model cannot write are refused."""
        self.check_template(template)
        if word_level(tokenizer):  # the bundled model: one token per word or punctuation mark, capitals kept
            words = re.findall(rf"{GAP}|[^\W_]+|[^\w\s]", template.strip())
            ids = [tokenizer.mask_token_id if w == GAP else tokenizer.convert_tokens_to_ids(w) for w in words]
            unknown = [w for w, i in zip(words, ids) if i == tokenizer.unk_token_id]
            if unknown:
                raise InvalidInput("template", f"`template` has words the model never learnt: {', '.join(dict.fromkeys(unknown))}"
                                   " (it knows the words of its training descriptions, capitals as there).")
        else:
            parts, ids = template.strip().split(GAP), []
            for i, part in enumerate(parts):
                ids += tokenizer(part, add_special_tokens=False).input_ids if part else []
                ids += [tokenizer.mask_token_id] if i < len(parts) - 1 else []
        low, high, multiple = self.limits["gen_length"]
        if len(ids) > high - 1:
            raise InvalidInput("template", f"`template` is {len(ids)} tokens long; the limit is {high - 1} (one is left "
                               "for the end of the text).")
        return ids

    def prompt_ids(self, tokenizer, prompt: str, block_length: int, gen_length: int | None = None):
        """(input_ids, attention_mask) of the prompt, left-padded so that the answer ends at a block's end
        (a block length that divides gen_length: the answer starts a block too).

        A chat model gets its chat template; the bundled model (no template) gets the prompt and [SEP].
        """
        import torch

        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                tokenize=True, return_dict=True)["input_ids"]
        else:
            ids = tokenizer(prompt, add_special_tokens=False).input_ids + [tokenizer.sep_token_id]
        ids = list(ids)
        pad = -(len(ids) + (gen_length or 0)) % block_length
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return torch.tensor([[pad_id] * pad + ids]), torch.tensor([[0] * pad + [1] * len(ids)])

    # -- generation ------------------------------------------------------------------------------
    def stream(self, prompt: str, gen_length: int | None = None, num_inference_steps: int | None = None, seed: int = 0,
               temperature: float | None = None, block_length: int | None = None, threshold: float | None = None,
               editing_threshold: float | None = None) -> Iterator[Step | TextDiffusionOutput]:
        """Yield one Step per refinement (preview: the whole canvas), then a TextDiffusionOutput (its `run`: the numbers).

        `num_inference_steps` is the budget for the whole canvas: each block gets the same share of it
        (ceil(steps * block_length / gen_length), at least one), so a run takes at least one step per block.
        Step.info: see `Recorder.__call__` and the README; `records(output)` is the API's JSON.
        """
        gen_length = self.setting("gen_length", gen_length, 32)
        num_inference_steps = self.setting("num_inference_steps", num_inference_steps, 16)
        temperature = self.setting("temperature", temperature, 0.0)
        block_length = self.setting("block_length", block_length, gen_length)
        threshold = self.setting("threshold", threshold, 0.0)
        editing_threshold = self.setting("editing_threshold", editing_threshold, 0.0)
        self.check_inputs(prompt, gen_length, num_inference_steps, seed, temperature, block_length, threshold,
                          editing_threshold)
        knobs = {"gen_length": int(gen_length), "block_length": int(block_length), "threshold": float(threshold),
                 "editing_threshold": float(editing_threshold), "temperature": float(temperature)}

        def work(emit):
            pipe = self.pipe  # loads on first use; not counted in the timings
            timer = Timer()
            if type(pipe).__name__ == "DiffusionGemmaPipeline":
                return self._run_gemma(pipe, prompt.strip(), int(num_inference_steps), int(seed), knobs, emit, timer)
            return self._run_llada(pipe, prompt.strip(), int(num_inference_steps), int(seed), knobs, emit, timer)

        return stream_steps(work, self.lock, self.threads)

    def infill_stream(self, prompt: str, template: str, num_inference_steps: int | None = None, seed: int = 0,
                      temperature: float | None = None) -> Iterator[Step | TextDiffusionOutput]:
        """Fill the gaps of `template` (the answer with one `_` per missing token), reading the words on both sides.

        The given words stay exactly as written; the canvas is the template followed by end-of-text, as long as
        the shortest allowed gen_length that holds it. A run takes min(num_inference_steps, gaps) steps.
        Steps and output as `stream`; the output's run also says `gaps` (their positions).
        """
        num_inference_steps = self.setting("num_inference_steps", num_inference_steps, 16)
        temperature = self.setting("temperature", temperature, 0.0)
        self.check_infill(prompt, template, num_inference_steps, seed, temperature)
        low, high, multiple = self.limits["gen_length"]

        def work(emit):
            import torch

            pipe = self.pipe
            if type(pipe).__name__ == "DiffusionGemmaPipeline":
                raise InvalidInput("template", "DiffusionGemma renoises its canvas with random tokens: it cannot keep a "
                                   "template's words. Infill with a masked model (the bundled one or ModernBERT).")
            tokenizer = pipe.tokenizer
            ids = self.template_ids(tokenizer, template)
            gen_length = max(low, -(-(len(ids) + 1) // multiple) * multiple)
            canvas = ids + [tokenizer.eos_token_id] * (gen_length - len(ids))
            gaps = [p for p, t in enumerate(canvas) if t == tokenizer.mask_token_id]
            steps = min(int(num_inference_steps), len(gaps))
            timer = Timer()
            prompt_ids, mask = self.prompt_ids(tokenizer, prompt.strip(), gen_length, gen_length)
            x = torch.cat([prompt_ids, torch.tensor([canvas])], 1)
            attention = torch.cat([mask, torch.ones(1, gen_length, dtype=torch.long)], 1)
            knobs = {"gen_length": gen_length, "block_length": gen_length, "threshold": 0.0, "editing_threshold": 0.0,
                     "temperature": float(temperature)}
            record = Recorder(tokenizer, gen_length, steps, pipe.mask_token_id, emit, timer, knobs)
            record.before = list(canvas)
            generator = torch.Generator("cpu").manual_seed(int(seed))
            pipe.scheduler.set_timesteps(steps, block_length=len(gaps))
            given = torch.tensor([t != tokenizer.mask_token_id for t in canvas])
            self._refine(pipe, x, attention, gen_length, range(steps), given, float(temperature), 1.0, 0.0, generator, record)
            return record.output(x[0, -gen_length:].tolist(), gaps=gaps)

        return stream_steps(work, self.lock, self.threads)

    @staticmethod
    def _refine(pipe, x, attention, gen_length, steps, protected, temperature, threshold, editing, generator, record):
        """Our own loop on the scheduler's `step`, over the last `gen_length` positions of `x` (in place): one
        forward pass per step; `steps`: the scheduled step indices (empty: review passes only, `editing` > 0)."""
        import torch

        sampling = "multinomial" if temperature > 0 else "greedy"
        positions = torch.arange(x.shape[1])[None]
        schedule = list(steps) + [None] * (REVIEW_PASSES if editing > 0 else 0)
        for step_idx in schedule:
            sample = x[:, -gen_length:]
            masks_left = bool((sample == pipe.mask_token_id).any())
            if step_idx is None and masks_left:
                break
            with torch.no_grad():
                logits = pipe.model(x, attention_mask=attention, position_ids=positions).logits[:, -gen_length:]
            out = pipe.scheduler.step(logits, step_idx or 0, sample, mask_token_id=pipe.mask_token_id,
                                      temperature=temperature, sampling_method=sampling, threshold=threshold,
                                      editing_threshold=editing or None, prompt_mask=protected, generator=generator)
            x[:, -gen_length:] = out.prev_sample
            top = logits[0].float().softmax(-1).max(-1)
            revised = out.editing_transfer_index[0].nonzero().flatten().tolist()
            record(x[0, -gen_length:].tolist(), out.transfer_index[0].nonzero().flatten().tolist(), revised,
                   dict(enumerate(out.sampled_probs[0].tolist())), (0, gen_length),
                   dict(enumerate(top.indices.tolist())), dict(enumerate(top.values.tolist())))
            if step_idx is None and not revised:
                break

    def _run_llada(self, pipe, prompt, num_inference_steps, seed, knobs, emit, timer):
        import torch

        tokenizer, mask_id = pipe.tokenizer, pipe.mask_token_id
        gen_length, block = knobs["gen_length"], knobs["block_length"]
        ids, mask = self.prompt_ids(tokenizer, prompt, block, gen_length)
        prompt_length = ids.shape[1]
        per_block = min(block, max(1, -(-num_inference_steps * block // gen_length)))
        first = gen_length % block or block  # answer positions in the first block (the rest of it is prompt)
        schedule = pipe.scheduler.get_num_transfer_tokens(block, per_block).cumsum(0).tolist()
        planned = next(i + 1 for i, c in enumerate(schedule) if c >= first) + (-(-gen_length // block) - 1) * per_block
        record = Recorder(tokenizer, gen_length, planned, mask_id, emit, timer, knobs)
        # Each position's most likely token and its probability: greedy sampling picks exactly those (the scheduler's
        # sampled tokens and probabilities); sampling at a temperature, from the model's logits, read by a hook.
        greedy = knobs["temperature"] == 0
        logits = [None]
        hook = None if greedy else pipe.model.register_forward_hook(
            lambda module, args, out: logits.__setitem__(0, out.logits))

        def on_step(p, i, t, kw):
            end = kw["block_x"].shape[1] - prompt_length  # the block refined is [end - block, end) of the answer
            canvas = kw["block_x"][0, prompt_length:].tolist() + [mask_id] * (gen_length - end)
            if greedy:
                likeliest, confidence = kw["sampled_tokens"][0], kw["sampled_probs"][0]
            else:
                confidence, likeliest = logits[0][0, -block:].float().softmax(-1).max(-1)
            at = lambda row: {end - block + j: v for j, v in enumerate(row.tolist()) if end - block + j >= 0}  # noqa: E731
            where = lambda flags: [end - block + j for j in flags[0].nonzero().flatten().tolist()]  # noqa: E731
            record(canvas, where(kw["transfer_index"]), where(kw["editing_transfer_index"]), at(kw["sampled_probs"][0]),
                   (max(0, end - block), end), at(likeliest), at(confidence))
            return {}

        generator = torch.Generator("cpu").manual_seed(seed)
        sampling = "multinomial" if knobs["temperature"] > 0 else "greedy"
        try:
            output = pipe(input_ids=ids, attention_mask=mask, use_chat_template=False, gen_length=gen_length,
                          block_length=block, num_inference_steps=per_block, temperature=knobs["temperature"],
                          sampling_method=sampling, threshold=knobs["threshold"] or 1.0,
                          editing_threshold=knobs["editing_threshold"] or None, eos_early_stop=False,
                          generator=generator, output_type="seq", callback_on_step_end=on_step,
                          callback_on_step_end_tensor_inputs=["block_x", "transfer_index", "editing_transfer_index",
                                                              "sampled_tokens", "sampled_probs"])
            sequence = output.sequences[:, :gen_length]
            if knobs["editing_threshold"] > 0:  # review passes over the whole finished answer
                x = torch.cat([ids, sequence], 1)
                attention = torch.cat([mask, torch.ones_like(sequence)], 1)
                self._refine(pipe, x, attention, gen_length, [], torch.zeros(gen_length, dtype=torch.bool),
                             knobs["temperature"], 1.0, knobs["editing_threshold"], generator, record)
                sequence = x[:, -gen_length:]
        finally:
            if hook is not None:
                hook.remove()
        return record.output(sequence[0].tolist())

    def _run_gemma(self, pipe, prompt, num_inference_steps, seed, knobs, emit, timer):
        """DiffusionGemma renoises uncommitted positions with random tokens instead of a mask: the scheduler's
        record of committed positions says what is settled; the rest shows as masked. Whole canvas only."""
        import torch

        if knobs["block_length"] != knobs["gen_length"] or knobs["editing_threshold"] > 0:
            raise InvalidInput("block_length" if knobs["block_length"] != knobs["gen_length"] else "editing_threshold",
                               "DiffusionGemmaPipeline refines its whole canvas and does not revise: leave `block_length` "
                               "at gen_length and `editing_threshold` at 0.")
        tokenizer = getattr(pipe.processor, "tokenizer", pipe.processor)
        canvas_length = pipe.model.config.canvas_length
        record = Recorder(tokenizer, canvas_length, num_inference_steps, -1, emit, timer, knobs)
        before = [torch.zeros(1, canvas_length, dtype=torch.bool)]

        def on_step(p, i, t, kw):
            settled = p.scheduler._committed if p.scheduler._committed is not None else torch.ones_like(before[0])
            new = (settled & ~before[0])[0].nonzero().flatten().tolist()
            before[0] = settled.clone() if i + 1 < num_inference_steps else torch.zeros_like(settled)
            top = torch.softmax(kw["logits"][0].float(), -1).max(-1)
            canvas = [int(tok) if ok else -1 for tok, ok in zip(kw["canvas"][0].tolist(), settled[0].tolist())]
            record(canvas, new, [], dict(enumerate(top.values.tolist())), (0, canvas_length),
                   dict(enumerate(top.indices.tolist())), dict(enumerate(top.values.tolist())))
            return {}

        generator = torch.Generator("cpu").manual_seed(seed)
        output = pipe(prompt=prompt, gen_length=knobs["gen_length"], num_inference_steps=num_inference_steps,
                      temperature=knobs["temperature"], confidence_threshold=knobs["threshold"] or None,
                      eos_early_stop=False, generator=generator, output_type="seq", callback_on_step_end=on_step,
                      callback_on_step_end_tensor_inputs=["canvas", "logits"])
        return record.output(output.sequences[0].tolist()[:knobs["gen_length"]])


def records(output: TextDiffusionOutput) -> dict:
    """The `/text_diffusion` (and `/text_diffusion_infill`) API's JSON: {"steps": [...], "run": {...}}."""
    keys = ("committed", "revised", "masks_left", "seconds", "block", "confidence")
    return {"steps": [{"step": s.index, **{k: s.info[k] for k in keys}} for s in output.steps],
            "run": getattr(output, "run", {})}
