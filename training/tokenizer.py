"""A tiny CLIP tokenizer whose vocabulary is a closed word list: each known word is one token.

It is a real `CLIPTokenizer` (byte-level BPE, `</w>` word ends), so the bundled models load through
exactly the code path of Hub models. Unknown words fall apart into single characters, which the
model has never seen used: the UI warns about them (see `pipelines/image.py: unknown_words`).
"""

from transformers import CLIPTokenizer


def _bytes_to_unicode() -> list[str]:
    # GPT-2's reversible byte -> printable character table, which CLIP's byte-level BPE uses.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def build_tokenizer(words: list[str], model_max_length: int = 16) -> CLIPTokenizer:
    """A CLIPTokenizer in which every word of `words` is a single token."""
    chars = _bytes_to_unicode()
    vocab = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in sorted(set(words)):
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:  # merge left to right: "r e", "re d</w>"
            pair = (parts[0], parts[1])
            if pair not in merges:
                merges.append(pair)
            if pair[0] + pair[1] not in vocab:
                vocab.append(pair[0] + pair[1])
            parts = [pair[0] + pair[1]] + parts[2:]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=model_max_length)
