"""Train the bundled text-diffusion model (models/tiny-text-diffusion) on procedural descriptions, on the CPU.

    python training/train_text_diffusion.py      # about 35 min on 2 cores; seeded and reproducible

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
The answer lengths (gen_length) vary from 24 to 64 tokens, so one model serves every length the tab offers.
"""

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import BlockRefinementScheduler, LLaDA2Pipeline
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).parent))
from descriptions import FORMS, PLACE, SIZE_WORDS, SPECIAL, sample, vocabulary, words  # noqa: E402
from shapes import COLOURS, SHAPES  # noqa: E402
from train_image import cosine_lr, log, update  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GEN_LENGTHS = (24, 32, 40, 48)  # the lengths the Text diffusion tab offers (its slider's range and step)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "models" / "tiny-text-diffusion"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=48)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--content-weight", type=float, default=4.0,
                   help="loss weight of answer tokens that name a colour, shape, size or position (1: plain LLaDA)")
    p.add_argument("--snapshot-every", type=int, default=0)  # save <out>-snapshot every N steps (0: never)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


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


def save(model, tokenizer, out: str) -> None:
    """A LLaDA2Pipeline folder (model in fp32: 3 MB)."""
    scheduler = BlockRefinementScheduler(block_length=32, num_inference_steps=16, threshold=1.0)
    LLaDA2Pipeline(model=model, scheduler=scheduler, tokenizer=tokenizer).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(Path(out, "tokenizer"))  # diffusers skips transformers 5's TokenizersBackend
    index = Path(out, "model_index.json")
    index.write_text(json.dumps({**json.loads(index.read_text()), "tokenizer": ["transformers", "PreTrainedTokenizerFast"]},
                                indent=2) + "\n")


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    # 1. Tokenizer and model.
    tokenizer = build_tokenizer()
    mask_id = tokenizer.mask_token_id
    model = make_model(len(tokenizer))
    log(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {len(tokenizer)} tokens")
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema = copy.deepcopy(model).requires_grad_(False)
    weights = torch.ones(len(tokenizer))
    weights[content_ids(tokenizer)] = args.content_weight

    # 2. Masked diffusion: fresh procedural pairs every step (the corpus is unbounded), one length per batch.
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
        t = torch.rand(len(x0), 1) * 0.98 + 0.02  # masking ratio per example (never exactly 0)
        answer = torch.zeros_like(x0, dtype=torch.bool)
        answer[:, gen_length:] = True
        masked = answer & (torch.rand(x0.shape) < t)
        xt = torch.where(masked, mask_id, x0)
        logits = model(xt, attention_mask=attention, position_ids=torch.arange(x0.shape[1])[None]).logits
        ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")
        loss = (ce * weights[x0] * masked / t).sum() / (len(x0) * gen_length)
        update(opt, params, loss, ((ema, model),), step)
        if args.snapshot_every and step and step % args.snapshot_every == 0:  # to evaluate while it trains
            save(ema, tokenizer, args.out + "-snapshot")
        if step % 100 == 0 or step == args.steps - 1:
            log(f"step {step} loss {loss.item():.4f} elapsed {(time.time() - t0) / 60:.1f} min")

    # 3. Save a LLaDA2Pipeline folder and how it was made.
    save(ema, tokenizer, args.out)
    info = {"seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
            "content_weight": args.content_weight,
            "gen_lengths": list(GEN_LENGTHS), "sentence_forms": len(FORMS), "objective":
            "masked diffusion (LLaDA): t ~ U(0.02, 1) per example, answer tokens masked with probability t, "
            "cross-entropy on masked tokens weighted 1/t (content words x content_weight)", "model": "ModernBertForMaskedLM 4x128",
            "minutes": round((time.time() - t0) / 60, 1), "vocabulary": [w for w in vocabulary() if w not in SPECIAL]}
    Path(args.out, "training_info.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"saved {args.out} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
