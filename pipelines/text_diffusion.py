"""Text made by diffusion: a masked-diffusion language model as a stream of refinement steps.

An LLM writes one token per step, left to right, and never takes one back. A diffusion language
model (LLaDA, DiffusionGemma) starts from a canvas of `gen_length` masked positions and, at every
step, predicts *all* of them at once, then commits the ones it is most sure of, wherever they are;
after `num_inference_steps` steps the canvas is full. Each `Step` here is one such refinement:
its preview is the whole canvas (committed tokens as text, masked positions as MASK_GLYPH, end-of-text as
END_GLYPH), and its
info lists the positions committed at that step, with their tokens and probabilities.

Built on diffusers' own `LLaDA2Pipeline` + `BlockRefinementScheduler` (bundled tiny ModernBERT and
the `small` preset's dLLM ModernBERT chat model, both `ModernBertForMaskedLM`) and
`DiffusionGemmaPipeline` (the `large` preset), read step by step through `callback_on_step_end`.
The prompt is left-padded to fill whole blocks of `gen_length`, so the answer is one block: the
whole answer is refined in parallel, not block by block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from collections.abc import Iterator
from pathlib import Path

if TYPE_CHECKING:  # annotations only: torch is imported on first use
    import torch

from .base import Cancelled, Step, TextOutput, Timer, stream_steps
from .checks import MAX_PROMPT_CHARS, check_multiple, check_range, check_seed, check_text
from .diffusion import DiffusionModel

MASK_GLYPH = "▒"  # how a still-masked position looks in previews
END_GLYPH = " ·"  # a position committed to end-of-text (the answer is shorter than gen_length): visible, not text


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
    if getattr(tokenizer, "backend_tokenizer", None) is not None and \
            type(tokenizer.backend_tokenizer.model).__name__ == "WordLevel":
        return token if token in ",.:;!?" else " " + token
    return tokenizer.convert_tokens_to_string([token])


class TextDiffusionPipeline(DiffusionModel):
    """Spec, lazy locked loading and `info` as every diffusion family (DiffusionModel); a stream of refinements."""

    task = "text_diffusion"
    LIMITS = {"gen_length": (8, 512, 8)}

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

    # -- generation ------------------------------------------------------------------------------
    def check_inputs(self, prompt, gen_length, num_inference_steps, seed, temperature) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        low, high, multiple = self.limit("gen_length")
        check_range("gen_length", gen_length, low, high, integer=True)
        check_multiple("gen_length", gen_length, multiple)
        check_range("num_inference_steps", num_inference_steps, 1, int(gen_length), integer=True)
        check_seed(seed)
        check_range("temperature", temperature, 0.0, 2.0)

    def prompt_ids(self, tokenizer, prompt: str, block_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of the prompt, left-padded to whole blocks so the answer is one block.

        A chat model gets its chat template; the bundled model (no template) gets the prompt and [SEP].
        """
        import torch

        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                tokenize=True, return_dict=True)["input_ids"]
        else:
            ids = tokenizer(prompt, add_special_tokens=False).input_ids + [tokenizer.sep_token_id]
        ids = list(ids)
        pad = -len(ids) % block_length
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return torch.tensor([[pad_id] * pad + ids]), torch.tensor([[0] * pad + [1] * len(ids)])

    def stream(self, prompt: str, gen_length: int | None = None, num_inference_steps: int | None = None, seed: int = 0,
               temperature: float | None = None) -> Iterator[Step | TextOutput]:
        """Yield one Step per refinement iteration (preview: the whole canvas), then a TextOutput.

        Step.info: `committed` (every position committed at this step: position, token, probability),
        `masks_left`, `seconds` (this step alone) and `canvas` (one piece of text per position, masks as MASK_GLYPH).
        """
        d = self.spec.defaults
        gen_length = d.get("gen_length", 32) if gen_length is None else gen_length
        num_inference_steps = d.get("num_inference_steps", 16) if num_inference_steps is None else num_inference_steps
        temperature = d.get("temperature", 0.0) if temperature is None else temperature
        self.check_inputs(prompt, gen_length, num_inference_steps, seed, temperature)

        def work(emit):
            pipe = self.pipe  # loads on first use; not counted in the timings
            timer = Timer()
            if type(pipe).__name__ == "DiffusionGemmaPipeline":
                return self._run_gemma(pipe, prompt.strip(), int(gen_length), int(num_inference_steps), int(seed),
                                       float(temperature), emit, timer)
            return self._run_llada(pipe, prompt.strip(), int(gen_length), int(num_inference_steps), int(seed),
                                   float(temperature), emit, timer)

        return stream_steps(work, self.lock, self.threads)

    @staticmethod
    def _record(tokenizer, index: int, total: int, canvas: list[int], committed: list[int], probs, mask_id: int,
                last: list, timer) -> Step:
        """Step `index` from the canvas (token ids, `mask_id` where still masked) and the positions just committed."""
        now = timer()
        ends = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        pieces = [MASK_GLYPH if t == mask_id else END_GLYPH if t in ends else token_piece(tokenizer, t) for t in canvas]
        info = {"committed": [{"position": p, "token": tokenizer.convert_ids_to_tokens(canvas[p]) if canvas[p] in ends
                               else pieces[p].strip() or tokenizer.convert_ids_to_tokens(canvas[p]),
                               "probability": round(float(probs[p]), 4)} for p in committed],
                "masks_left": sum(t == mask_id for t in canvas), "seconds": round(now - last[0], 4), "canvas": pieces}
        last[0] = now
        return Step(index=index, total=total, elapsed=now, preview="".join(pieces).strip(), info=info)

    def _run_llada(self, pipe, prompt, gen_length, num_inference_steps, seed, temperature, emit, timer):
        import torch

        tokenizer = pipe.tokenizer
        ids, mask = self.prompt_ids(tokenizer, prompt, gen_length)
        prompt_length = ids.shape[1]
        steps: list[Step] = []
        last = [timer()]
        total = min(num_inference_steps, gen_length)

        def on_step(p, i, t, kw):
            canvas = kw["block_x"][0, prompt_length:prompt_length + gen_length].tolist()
            committed = kw["transfer_index"][0, -gen_length:].nonzero().flatten().tolist()
            committed.sort(key=lambda pos: -float(kw["sampled_probs"][0, -gen_length + pos]))
            step = self._record(tokenizer, len(steps) + 1, total, canvas, committed, kw["sampled_probs"][0, -gen_length:],
                                pipe.mask_token_id, last, timer)
            steps.append(step)
            if not emit(step):
                raise Cancelled()  # LLaDA2Pipeline has no interrupt flag: leave its loop from here
            return {}

        generator = torch.Generator("cpu").manual_seed(seed)
        output = pipe(input_ids=ids, attention_mask=mask, use_chat_template=False, gen_length=gen_length,
                      block_length=gen_length, num_inference_steps=num_inference_steps, temperature=temperature,
                      sampling_method="multinomial" if temperature > 0 else "greedy", threshold=1.0,
                      editing_threshold=None, eos_early_stop=False, generator=generator, output_type="seq",
                      callback_on_step_end=on_step,
                      callback_on_step_end_tensor_inputs=["block_x", "transfer_index", "sampled_probs"])
        return self._output(tokenizer, output.sequences[0].tolist(), steps, timer)

    def _run_gemma(self, pipe, prompt, gen_length, num_inference_steps, seed, temperature, emit, timer):
        """DiffusionGemma renoises uncommitted positions with random tokens instead of a mask: the scheduler's
        record of committed positions says what is settled; the rest shows as masked."""
        import torch

        tokenizer = getattr(pipe.processor, "tokenizer", pipe.processor)
        steps: list[Step] = []
        last = [timer()]
        canvas_length = pipe.model.config.canvas_length
        before = [torch.zeros(1, canvas_length, dtype=torch.bool)]

        def on_step(p, i, t, kw):
            settled = p.scheduler._committed if p.scheduler._committed is not None else torch.ones_like(before[0])
            new = (settled & ~before[0])[0].nonzero().flatten().tolist()
            before[0] = settled.clone() if i + 1 < num_inference_steps else torch.zeros_like(settled)
            probs = torch.softmax(kw["logits"][0].float(), -1).max(-1).values
            canvas = [int(tok) if ok else -1 for tok, ok in zip(kw["canvas"][0].tolist(), settled[0].tolist())]
            step = self._record(tokenizer, len(steps) + 1, num_inference_steps, canvas, new, probs, -1, last, timer)
            steps.append(step)
            if not emit(step):
                raise Cancelled()
            return {}

        generator = torch.Generator("cpu").manual_seed(seed)
        output = pipe(prompt=prompt, gen_length=gen_length, num_inference_steps=num_inference_steps,
                      temperature=temperature, confidence_threshold=None, eos_early_stop=False, generator=generator,
                      output_type="seq", callback_on_step_end=on_step,
                      callback_on_step_end_tensor_inputs=["canvas", "logits"])
        return self._output(tokenizer, output.sequences[0].tolist()[:gen_length], steps, timer)

    @staticmethod
    def _output(tokenizer, sequence: list[int], steps: list[Step], timer) -> TextOutput:
        if tokenizer.eos_token_id in sequence:  # the answer ends at its first end-of-text
            sequence = sequence[:sequence.index(tokenizer.eos_token_id)]
        text = tokenizer.decode(sequence, skip_special_tokens=True).strip()
        return TextOutput(text=text, seconds=timer(), steps=steps, finish_reason="stop")


def records(output: TextOutput) -> dict:
    """The `/text_diffusion` API's JSON: {"steps": [{"step", "committed", "masks_left", "seconds"}]}."""
    return {"steps": [{"step": s.index, "committed": s.info["committed"], "masks_left": s.info["masks_left"],
                       "seconds": s.info["seconds"]} for s in output.steps]}

