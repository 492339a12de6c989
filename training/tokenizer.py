"""A tiny CLIP tokenizer whose vocabulary is a closed word list: each known word is one token.

It is a real `CLIPTokenizer` (byte-level BPE, `</w>` word ends), so the bundled models load through
exactly the code path of Hub models. Its merges are *trained* on the word list with the `tokenizers`
BPE trainer: hand-written merge chains collide (the `r i` of "right" breaks "triangle" apart), a
trained merge table reproduces every word it was trained on. Unknown words fall apart into
characters the model has never seen used: the UI warns about them.
"""

import json

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CLIPTokenizer

SPECIAL = ["<|startoftext|>", "<|endoftext|>"]


def build_tokenizer(words: list[str], model_max_length: int = 16) -> CLIPTokenizer:
    """A CLIPTokenizer in which every word of `words` is a single token (checked)."""
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    bpe.train_from_iterator(sorted(set(words)), trainers.BpeTrainer(
        vocab_size=100_000, min_frequency=1, special_tokens=SPECIAL, initial_alphabet=alphabet,
        end_of_word_suffix="</w>", show_progress=False))
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    for char in sorted(alphabet):  # every character can end a word, so unknown words still tokenize
        vocab.setdefault(char + "</w>", len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    split = [w for w in words if len(tokenizer(w).input_ids) != 3]
    if split:
        raise RuntimeError(f"words that are not single tokens: {split}")
    return tokenizer
