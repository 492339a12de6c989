"""Measure the bundled text-diffusion model: neighbour disagreement with and without revision, meaning checks,
fluency, infilling, and the parallelism dial (steps, forward passes, seconds at block lengths 1, 4, 8, whole).

    python training/eval_text_diffusion.py                       # the bundled model, held-out set (about 3 min)
    python training/eval_text_diffusion.py --set validation --model /tmp/candidate --editing 0.3 0.5 0.7

Prompts come from training/descriptions.py with generator seeds training never uses (it draws from
random.Random(0)), generation seeds likewise. Two sets: `validation` (for choosing settings and models)
and `heldout` (for the numbers in the README, looked at once the choices were made); the tests use a third.
- neighbours disagree: two neighbouring words are the same ("on a red red background", "at the top..");
- fluent: the description is word for word one the corpus grammar can write for that prompt;
- checks: the shape, its colour right before it, the position's word, the background colour are named.
"""

import argparse
import itertools
import json
import random
import re
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))
from descriptions import FORMS, describe, names_all, prompt_parts, prompt_text, render_form, vocabulary, words  # noqa: E402
from shapes import random_scene  # noqa: E402

from pipelines.base import final  # noqa: E402
from pipelines.specs import ModelSpec  # noqa: E402
from pipelines.text_diffusion import TextDiffusionPipeline  # noqa: E402

SETS = {"validation": (70_001, 71_000, 72_001), "heldout": (80_001, 81_000, 82_001)}  # prompts, seeds, templates


def prompts(seed: int, n: int) -> list[tuple[dict, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = prompt_parts(random_scene(rng), rng, drop=0.2)
        out.append((parts, prompt_text(parts, rng)))
    return out


def checks(parts: dict, text: str) -> list[bool]:
    """The bundled test's checks: what a reader would check."""
    t = text.lower()
    result = [re.search(rf"\b{parts['shape']}\b", t) is not None]
    if "colour" in parts:
        result.append(re.search(rf"\b{parts['colour']} {parts['shape']}\b", t) is not None)
    if "position" in parts:
        result.append(re.search(rf"\b{parts['position']}\b", t) is not None)
    if "background" in parts:
        bg = parts["background"]
        result.append(re.search(rf"\b{bg} background\b|\bbackground is {bg}\b", t) is not None)
    return result


class Picks:
    """A stand-in for random.Random whose `choice` takes the given indices in turn: enumerates render_form."""

    def __init__(self, indices):
        self.indices = iter(indices)

    def choice(self, seq):
        return seq[next(self.indices) % len(seq)]


def grammar(parts: dict, max_words: int) -> set[str]:
    """Every description the corpus can write for these parts (each form, each phrasing)."""
    texts = set()
    for form in FORMS:
        for picks in itertools.product(range(4), repeat=3):
            text = render_form(form, parts, Picks(picks))
            if names_all(parts, text) and len(words(text)) <= max_words:
                texts.add(text)
    return texts


def disagree(text: str) -> bool:
    w = words(text.lower())
    return any(a == b for a, b in zip(w, w[1:]))


def generate(model, cases, seed0: int, **kwargs) -> dict:
    """Run every prompt once (seed seed0 + i); the rates and the run numbers."""
    rows, seconds, steps, flagged = [], [], [], []
    for i, (parts, prompt) in enumerate(cases):
        out = final(model.stream(prompt, seed=seed0 + i, **kwargs))
        fluent = out.text in grammar(parts, kwargs.get("gen_length", 32) - 1)
        rows.append((disagree(out.text), fluent, checks(parts, out.text), out.run["revisions"]))
        seconds.append(out.seconds)
        steps.append(out.run["steps"])
        if rows[-1][0] and len(flagged) < 3:
            flagged.append(f"{prompt!r} -> {out.text!r}")
    results = [c for r in rows for c in r[2]]
    return {"disagree": sum(r[0] for r in rows), "fluent": sum(r[1] for r in rows), "n": len(rows),
            "checks": round(sum(results) / len(results), 3), "n_checks": len(results),
            "revisions": sum(r[3] for r in rows), "steps": statistics.median(steps),
            "seconds": round(statistics.median(seconds), 4), "examples": flagged}


def templates(seed: int, n: int, share: float = 0.0) -> list[tuple[dict, str, str, list[str]]]:
    """(parts, prompt, template, answers): a description with its colour, position and background words gapped
    (`share` > 0: instead, each word gapped with that probability, the first one always kept)."""
    rng, known = random.Random(seed), set(vocabulary())
    out = []
    for _ in range(n):
        parts = prompt_parts(random_scene(rng), rng, drop=0.2)
        prompt, text = prompt_text(parts, rng), describe(parts, rng, max_words=31)
        while set(words(text)) - known:  # capitalised place phrases ("Over on the left, ...") are not in the vocabulary
            text = describe(parts, rng, max_words=31)
        tokens = words(text)
        if share:
            gaps = [i > 0 and rng.random() < share for i in range(len(tokens))]
            gaps[rng.randrange(1, len(tokens))] = True  # at least one
        else:
            gapped = {parts.get("colour"), parts.get("position"), parts.get("background")} - {None}
            gaps = [w.lower() in gapped for w in tokens]
        answers = [w for w, gap in zip(tokens, gaps) if gap]
        out.append((parts, prompt, " ".join("_" if gap else w for w, gap in zip(tokens, gaps)), answers))
    return out


def infill(model, cases, seed0: int, steps: int) -> dict:
    right = total = kept = named = fluent = 0
    for i, (parts, prompt, template, answers) in enumerate(cases):
        out = final(model.infill_stream(prompt, template, num_inference_steps=steps, seed=seed0 + i))
        got = words(out.text)
        given = [(a, b) for a, b in zip(template.split(), got) if a != "_"]
        kept += len(got) == len(template.split()) and all(a == b for a, b in given)
        fills = [b for a, b in zip(template.split(), got) if a == "_"]
        right += sum(a == b for a, b in zip(answers, fills))
        total += len(answers)
        named += all(checks(parts, out.text))
        fluent += out.text in grammar(parts, 31)
    return {"gaps_right": round(right / max(total, 1), 3), "gaps": total, "given_words_kept": kept,
            "named_all": named, "fluent": fluent, "n": len(cases)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/tiny-text-diffusion")
    p.add_argument("--set", choices=list(SETS), default="heldout")
    p.add_argument("--n", type=int, default=60)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--temperature", type=float, nargs="+", default=[0.0, 0.3])
    p.add_argument("--editing", type=float, nargs="+", default=[0.5], help="editing_threshold values to try")
    p.add_argument("--skip", nargs="*", default=[], choices=["revision", "infill", "dial"])
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args()
    torch.set_num_threads(1)
    model = TextDiffusionPipeline(ModelSpec(args.model, "eval", {"gen_length": 32, "num_inference_steps": 16},
                                            {"gen_length": (24, 48, 8)}), device="cpu")
    prompt_seed, gen_seed, template_seed = SETS[args.set]
    cases = prompts(prompt_seed, args.n)
    report = {"model": args.model, "set": args.set, "steps": args.steps, "revision": {}}
    for temperature in args.temperature if "revision" not in args.skip else []:
        for editing in [0.0] + args.editing:
            r = generate(model, cases, gen_seed, num_inference_steps=args.steps, temperature=temperature,
                         editing_threshold=editing)
            report["revision"][f"t={temperature} edit={editing}"] = r
            print(f"{args.set} {args.steps} steps, temperature {temperature}, editing {editing}: neighbours disagree "
                  f"in {r['disagree']}/{r['n']}, fluent {r['fluent']}/{r['n']}, checks {r['checks']} of {r['n_checks']}, "
                  f"{r['revisions']} revisions, median {r['steps']} steps {r['seconds']} s", flush=True)
            for example in r["examples"]:
                print("   ", example)
    if "infill" not in args.skip:
        for share, steps in ((0.0, 1), (0.0, 4), (0.3, 4), (0.3, 16)):
            r = infill(model, templates(template_seed, args.n, share), gen_seed, steps)
            kind = "any word gapped with p=0.3" if share else "colour, position, background gapped"
            report[f"infill: {kind}, {steps} steps"] = r
            print(f"infill ({kind}, {steps} steps): {r['gaps_right']} of {r['gaps']} gaps as the reference, given "
                  f"words kept in {r['given_words_kept']}/{r['n']}, every part named in {r['named_all']}/{r['n']}, "
                  f"fluent {r['fluent']}/{r['n']}", flush=True)
    if "dial" not in args.skip:
        report["dial"] = {}
        for steps in (8, 32):
            for block in (1, 4, 8, 32):
                for threshold in (0.0, 0.9):
                    r = generate(model, cases[:20], gen_seed, num_inference_steps=steps, block_length=block,
                                 temperature=0.0, threshold=threshold)
                    report["dial"][f"steps={steps} block={block} threshold={threshold}"] = r
                    print(f"dial: {steps} steps asked, block {block:2}, threshold {threshold}: {r['steps']} steps "
                          f"(= forward passes), {r['seconds']} s, disagree {r['disagree']}/{r['n']}, fluent "
                          f"{r['fluent']}/{r['n']}, checks {r['checks']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
