"""Train the bundled text-diffusion model (models/tiny-text-diffusion) on procedural descriptions.

    python training/train_text_diffusion.py      # seeded; 0.3 s a step on one CPU core (7000 steps: about 40 min);
                                                 # --device cuda: 2.6 min on an H200

It makes a standard `LLaDA2Pipeline` folder (model_index.json, model/, scheduler/, tokenizer/):
1. A word-level tokenizer (`PreTrainedTokenizerFast`, one token per word or punctuation mark) over
   every word of training/descriptions.py, with [PAD] [MASK] [EOS] [SEP] [UNK]; prompts are
   lower-cased on the way in, descriptions keep their capitals.
2. A tiny bidirectional transformer, `ModernBertForMaskedLM` built from a config (the class of the
   `small` preset's dLLM ModernBERT chat model), trained with the masked-diffusion objective of
   LLaDA: each example is `[PAD].. prompt [SEP] | description [EOS]..` (the prompt left-padded to
   fill one block of `gen_length`, as LLaDA2Pipeline lays it out); a masking ratio t ~ U(0, 1) is
   drawn per example, each answer position is masked with probability t, and the loss is the
   cross-entropy on the masked positions, weighted 1 / t. Tokens that name the picture (colours,
   shapes, sizes, positions) weigh `--content-weight` times more: the sentence frame is easy and
   learnt first, and with plain weights a first model (3000 steps) wrote fluent sentences that named
   the right colour 30 % of the time (with the rest of the answer visible).
3. Token editing (LLaDA 2.1): in most examples some of the visible answer tokens are swapped for wrong
   ones, half of them a neighbour's word (what parallel decoding gets wrong: "on a red red background"),
   half any word, and the model learns to put the right word back; on the visible tokens left alone it
   learns to keep them. That is what lets the pipeline's `editing_threshold` revise a committed token.
4. Blocks: some examples show the answer as block decoding does (LLaDA2Pipeline with block_length < gen_length):
   the blocks before are written, the current block is noised, the positions after it are not there.
The answer lengths (gen_length) vary from 24 to 48 tokens, so one model serves every length the tab offers.
diffusers is not needed to train: the pipeline's two small config files are written as JSON.
"""

import argparse
import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).parent))
from descriptions import FORMS, PLACE, SIZE_WORDS, SPECIAL, sample, vocabulary, words  # noqa: E402
from shapes import COLOURS, SHAPES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GEN_LENGTHS = (24, 32, 40, 48)  # the lengths the Text diffusion tab offers (its slider's range and step)
BLOCK_LENGTHS = (1, 2, 4, 8, 16)  # block sizes shown in the block-decoding examples


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "models" / "tiny-text-diffusion"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=7000)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--content-weight", type=float, default=4.0,
                   help="loss weight of answer tokens that name a colour, shape, size or position (1: plain LLaDA)")
    p.add_argument("--corrupt", type=float, default=0.3,
                   help="most visible answer tokens swapped for wrong ones in an example (drawn U(0, this)); 0: masking only")
    p.add_argument("--edited", type=float, default=0.75, help="share of examples that get swapped tokens")
    p.add_argument("--keep-weight", type=float, default=0.2, help="loss weight of visible tokens left alone (learn to keep)")
    p.add_argument("--blocks", type=float, default=0.25, help="share of examples laid out as block decoding sees them")
    p.add_argument("--snapshot-every", type=int, default=0)  # save <out>-snapshot every N steps (0: never)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    return p.parse_args()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cosine_lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level: every word and , . : is one token; unknown words become [UNK]."""
    vocab = {word: i for i, word in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()  # prompts; descriptions are encoded word by word (see encode_answer)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, none before , and .
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", mask_token="[MASK]", eos_token="[EOS]",
                                   sep_token="[SEP]", unk_token="[UNK]", model_max_length=128)


def make_model(vocab_size: int) -> ModernBertForMaskedLM:
    return ModernBertForMaskedLM(ModernBertConfig(
        vocab_size=vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
        max_position_embeddings=128, layer_types=["full_attention"] * 4,  # short texts: every layer sees all
        pad_token_id=0, eos_token_id=2, sep_token_id=3, cls_token_id=3, bos_token_id=3,
        attention_dropout=0.0, mlp_dropout=0.0, embedding_dropout=0.0,
    ))


def layout(prompt_ids: list[int], answer_ids: list[int], gen_length: int) -> tuple[list[int], list[int]]:
    """(input ids, attention mask) as LLaDA2Pipeline builds them for a prompt left-padded to one block."""
    prompt_ids = prompt_ids[-(gen_length - 1):] + [SPECIAL.index("[SEP]")]
    pad = gen_length - len(prompt_ids)
    answer = answer_ids[:gen_length] + [SPECIAL.index("[EOS]")] * (gen_length - len(answer_ids))
    return [0] * pad + prompt_ids + answer, [0] * pad + [1] * (len(prompt_ids) + gen_length)


def encode_answer(tokenizer, text: str) -> list[int]:
    return tokenizer.convert_tokens_to_ids(words(text))


def content_ids(tokenizer) -> list[int]:
    """Token ids of the words that say what is in the picture: colours, shapes, sizes, the positions' own words."""
    names = set(COLOURS) | set(SHAPES) | {w for ws in SIZE_WORDS.values() for w in ws} | set(PLACE)
    return tokenizer.convert_tokens_to_ids(sorted(names))


def noise(x0: torch.Tensor, gen_length: int, mask_id: int, args, gen: torch.Generator):
    """Noise the answers of a batch: returns (xt, masked, swapped, kept, visible) for the answer half of x0.

    Per example: a span [start, end) of the answer is noised (the whole answer, or for a share `args.blocks` one
    block of a block-decoding run, the answer before it clean and the positions after it unseen); inside it each
    token is masked with probability t ~ U(0.02, 1), and of the rest a share r ~ U(0, args.corrupt) are swapped
    for wrong words (for a share `args.edited` of examples).
    """
    batch, g = len(x0), gen_length
    answer = x0[:, g:]
    pos = torch.arange(g)[None]
    start, end = torch.zeros(batch, 1, dtype=torch.long), torch.full((batch, 1), g)
    blocky = torch.rand(batch, generator=gen) < args.blocks
    sizes = torch.tensor(BLOCK_LENGTHS)[torch.randint(len(BLOCK_LENGTHS), (batch,), generator=gen)]
    index = (torch.rand(batch, generator=gen) * torch.div(g, sizes, rounding_mode="floor")).long()
    start[blocky, 0], end[blocky, 0] = (index * sizes)[blocky], ((index + 1) * sizes)[blocky]
    span = (pos >= start) & (pos < end)
    visible = pos < end  # positions after the block are not in the input at all (attention mask 0)
    t = torch.rand(batch, 1, generator=gen) * 0.98 + 0.02
    masked = span & (torch.rand(answer.shape, generator=gen) < t)
    r = torch.rand(batch, 1, generator=gen) * args.corrupt * (torch.rand(batch, 1, generator=gen) < args.edited)
    swap = span & ~masked & (torch.rand(answer.shape, generator=gen) < r)
    left, right = torch.roll(answer, 1, 1), torch.roll(answer, -1, 1)
    neighbour = torch.where(torch.rand(answer.shape, generator=gen) < 0.5, left, right)
    anyword = torch.randint(len(SPECIAL), args.vocab_size, answer.shape, generator=gen)
    wrong = torch.where(torch.rand(answer.shape, generator=gen) < 0.5, neighbour, anyword)
    swapped = swap & (wrong != answer)
    noisy = torch.where(masked, mask_id, torch.where(swapped, wrong, answer))
    kept = span & ~masked & ~swapped
    return torch.cat([x0[:, :g], noisy], 1), masked, swapped, kept, visible, t


def save(model, tokenizer, out: str, block_length: int = 32) -> None:
    """A LLaDA2Pipeline folder (model in fp32: 3 MB); its two pipeline config files as diffusers writes them."""
    model.save_pretrained(Path(out, "model"), safe_serialization=True)
    tokenizer.save_pretrained(Path(out, "tokenizer"))
    version = {"_diffusers_version": "0.42.1"}
    Path(out, "scheduler").mkdir(parents=True, exist_ok=True)
    Path(out, "scheduler", "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "BlockRefinementScheduler", **version, "block_length": block_length, "editing_threshold": None,
         "minimal_topk": 1, "num_inference_steps": 16, "threshold": 1.0}, indent=2) + "\n")
    Path(out, "model_index.json").write_text(json.dumps(
        {"_class_name": "LLaDA2Pipeline", **version, "model": ["transformers", "ModernBertForMaskedLM"],
         "scheduler": ["diffusers", "BlockRefinementScheduler"], "tokenizer": ["transformers", "PreTrainedTokenizerFast"]},
        indent=2) + "\n")


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    t0 = time.time()

    # 1. Tokenizer and model.
    tokenizer = build_tokenizer()
    mask_id = tokenizer.mask_token_id
    args.vocab_size = len(tokenizer)
    model = make_model(len(tokenizer)).to(device)
    log(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {len(tokenizer)} tokens, on {device}")
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema = copy.deepcopy(model).requires_grad_(False)
    weights = torch.ones(len(tokenizer))
    weights[content_ids(tokenizer)] = args.content_weight
    weights = weights.to(device)

    # 2. Masked diffusion with token editing: fresh procedural pairs every step (the corpus is unbounded), one length per batch.
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.steps, args.lr)
        gen_length = rng.choice(GEN_LENGTHS)
        rows, masks = [], []
        for _ in range(args.batch_size):
            prompt, description = sample(rng, max_words=gen_length - 1)
            ids, mask = layout(tokenizer(prompt, add_special_tokens=False).input_ids,
                               encode_answer(tokenizer, description), gen_length)
            rows.append(ids)
            masks.append(mask)
        x0, attention = torch.tensor(rows), torch.tensor(masks)
        xt, masked, swapped, kept, visible, t = noise(x0, gen_length, mask_id, args, gen)
        attention[:, gen_length:] *= visible
        x0, xt, attention = x0.to(device), xt.to(device), attention.to(device)
        logits = model(xt, attention_mask=attention, position_ids=torch.arange(x0.shape[1], device=device)[None]).logits
        target = x0[:, gen_length:]
        ce = F.cross_entropy(logits[:, gen_length:].transpose(1, 2), target, reduction="none") * weights[target]
        per_token = (masked / t + swapped + args.keep_weight * kept).to(device)
        loss = (ce * per_token).sum() / (len(x0) * gen_length)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():  # EMA: short memory at first, 0.999 once warmed up
            for pe, pl in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pl, 1 - min(0.999, (1 + step) / (10 + step)))
        if args.snapshot_every and step and step % args.snapshot_every == 0:  # to evaluate while it trains
            save(ema, tokenizer, args.out + "-snapshot")
        if step % 100 == 0 or step == args.steps - 1:
            log(f"step {step} loss {loss.item():.4f} elapsed {(time.time() - t0) / 60:.1f} min")

    # 3. Save a LLaDA2Pipeline folder and how it was made.
    save(ema.cpu(), tokenizer, args.out)
    info = {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
            "content_weight": args.content_weight, "corrupt": args.corrupt, "edited": args.edited,
            "keep_weight": args.keep_weight, "blocks": args.blocks, "block_lengths": list(BLOCK_LENGTHS),
            "gen_lengths": list(GEN_LENGTHS), "sentence_forms": len(FORMS), "objective":
            "masked diffusion (LLaDA) with token editing (LLaDA 2.1): t ~ U(0.02, 1) per example, answer tokens masked "
            "with probability t, cross-entropy on masked tokens weighted 1/t (content words x content_weight); of the "
            "visible ones a share r ~ U(0, corrupt) swapped for a neighbour's or any word and restored (weight 1), the "
            "rest kept (weight keep_weight); a share `blocks` of examples noise one block of a block-decoding run",
            "model": "ModernBertForMaskedLM 4x128", "device": args.device, "threads": args.threads,
            "minutes": round((time.time() - t0) / 60, 1), "vocabulary": [w for w in vocabulary() if w not in SPECIAL]}
    Path(args.out, "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"saved {args.out} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
