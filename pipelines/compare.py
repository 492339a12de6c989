"""One idea, every kind of model, step by step: the image diffusion model paints the prompt while the
text-diffusion model and the LLM describe it. All run at once through the one step interface; their
steps arrive interleaved.

    for side, item in compare_stream(image, text, "a red circle on a blue background", text_diffusion=td):
        ...  # side is "diffusion", "text_diffusion" or "llm"; item a Step, then ("done", CompareOutput)

And the experiments that turn the tab's claims into something a learner runs: `branch` (an LLM never
revises a token: force another candidate at step k, everything before stays), `switch` (a diffusion
model settles layout and colours early: change the prompt mid-way), `cost` (what grows with the output).
"""

import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .base import HEARTBEAT_S, Step, Timer, final
from .checks import InvalidInput, check_range, check_seed, check_text

DESCRIBE = "In one short sentence, describe a picture of {prompt}."
LANES = ("diffusion", "text_diffusion", "llm")
DONE = object()  # a lane has finished


@dataclass
class CompareOutput:
    image: object  # PIL image
    text: str  # the LLM's description
    records: dict  # {"diffusion": [...], "text_diffusion": [...], "llm": [...]}: one record per step
    seconds: dict  # {"diffusion": s, "text_diffusion": s, "llm": s, "wall": s}
    description: str = ""  # the text-diffusion model's description ("" without that lane)


PREVIEW_SIDE = 128  # a record's inline preview at most this many pixels a side (the bundled images are 64x64)


def preview_uri(image) -> str:
    """A step's preview as a small PNG data URI, for records that replay without the app (an exported run)."""
    import base64
    import io

    if max(image.size) > PREVIEW_SIDE:
        image = image.copy()
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def diffusion_record(step: Step, guidance_scale: float) -> dict:
    # classifier-free guidance runs the UNet on the prompt and on the empty prompt: two passes a step
    record = {"step": step.index, "timestep": step.info.get("timestep"), "seconds": step.info.get("seconds"),
              "elapsed": round(step.elapsed, 4), "forward_passes": 2 if guidance_scale > 1 else 1}
    if hasattr(step.preview, "save"):  # a PIL image (steps whose preview was skipped have none)
        record["preview"] = preview_uri(step.preview)
    return record


def text_diffusion_record(step: Step) -> dict:
    return {"step": step.index, "committed": step.info["committed"], "revised": step.info.get("revised", []),
            "seconds": step.info.get("seconds"), "elapsed": round(step.elapsed, 4), "masks_left": step.info["masks_left"],
            "forward_passes": 1}


def llm_record(step: Step) -> dict:
    return {"step": step.index, "token": step.info["token"], "probability": step.info["probability"],
            "candidates": step.info["candidates"], "seconds": step.info.get("seconds"),
            "elapsed": round(step.elapsed, 4), "forward_passes": 1}


def check_compare(image, text, prompt, num_inference_steps, max_new_tokens, seed) -> None:
    """What compare_stream checks, without running anything (for a validator that answers before the queue)."""
    check_text("prompt", prompt, 300)
    check_range("num_inference_steps", num_inference_steps, *image.limit("num_inference_steps"), integer=True)
    check_range("max_new_tokens", max_new_tokens, 1, 256, integer=True)
    check_seed(seed)


def check_branch(prompt, step, candidate, max_new_tokens, seed) -> None:
    check_text("prompt", prompt, 300)
    check_range("max_new_tokens", max_new_tokens, 1, 256, integer=True)
    check_range("step", step, 1, max_new_tokens, integer=True)
    check_range("candidate", candidate, 1, 5, integer=True)
    check_seed(seed)


def check_switch(image, prompt, prompt_after, switch_step, num_inference_steps, seed) -> None:
    check_text("prompt", prompt, 300)
    check_text("prompt_after", prompt_after, 300)
    check_range("num_inference_steps", num_inference_steps, *image.limit("num_inference_steps"), integer=True)
    check_range("switch_step", switch_step, 1, num_inference_steps, integer=True)
    check_seed(seed)


def check_knobs(prompt, seed) -> None:
    check_text("prompt", prompt, 300)
    check_seed(seed)


def check_switch_row(prompt, prompt_after, seed) -> None:
    check_text("prompt", prompt, 300)
    check_text("prompt_after", prompt_after, 300)
    check_seed(seed)


def compare_stream(image, text, prompt: str, num_inference_steps: int | None = None, max_new_tokens: int = 40,
                   seed: int = 0, guidance_scale: float | None = None, preview: bool = True,
                   text_diffusion=None) -> Iterator[tuple[str, object]]:
    """Yield (side, Step) as any model steps, then ("done", CompareOutput). The text-diffusion lane runs when
    `text_diffusion` is given and its model is there, with its own default length and steps. With HEARTBEAT_S set
    where it is made, ("wait", None) comes every that many seconds without a step."""
    return _compare_stream(image, text, prompt, num_inference_steps, max_new_tokens, seed, guidance_scale, preview,
                           text_diffusion, HEARTBEAT_S.get())


def _compare_stream(image, text, prompt, num_inference_steps, max_new_tokens, seed, guidance_scale, preview,
                    text_diffusion, heartbeat) -> Iterator[tuple[str, object]]:
    prompt = check_text("prompt", prompt, 300)
    check_range("max_new_tokens", max_new_tokens, 1, 256, integer=True)
    check_seed(seed)
    guidance_scale = image.spec.defaults.get("guidance_scale", 5.0) if guidance_scale is None else guidance_scale
    streams = {  # each pipeline checks its own inputs when its stream is made, before anything runs
        "diffusion": image.stream(prompt, "", num_inference_steps, guidance_scale, seed, preview=preview),
        "llm": text.stream(DESCRIBE.format(prompt=prompt), "", max_new_tokens, 0.0, 1.0, seed, preview=preview),
    }
    if text_diffusion is not None and not text_diffusion.missing:
        streams["text_diffusion"] = text_diffusion.stream(prompt, seed=seed)
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def drain(side: str) -> None:
        stream = streams[side]
        try:
            for item in stream:
                if item is None:  # a heartbeat of the lane's own
                    continue
                items.put((side, item))
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001  (re-raised by the consumer)
            items.put((side, exc))
        finally:
            stream.close()  # cancels that model's work if we left early
            items.put((side, DONE))

    threads = [threading.Thread(target=drain, args=(side,), daemon=True) for side in streams]
    timer = Timer()
    for t in threads:
        t.start()
    finals: dict = {}
    try:
        running = len(threads)
        while running:
            try:
                side, item = items.get(timeout=heartbeat)
            except queue.Empty:
                yield "wait", None
                continue
            if item is DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            elif isinstance(item, Step):
                yield side, item
            else:
                finals[side] = item
    finally:
        stop.set()
        for t in threads:
            t.join()
    td = finals.get("text_diffusion")
    records = {"diffusion": [diffusion_record(s, guidance_scale) for s in finals["diffusion"].steps],
               "text_diffusion": [text_diffusion_record(s) for s in td.steps] if td else [],
               "llm": [llm_record(s) for s in finals["llm"].steps]}
    seconds = {side: round(out.seconds, 3) for side, out in finals.items()} | {"wall": round(timer(), 3)}
    yield "done", CompareOutput(finals["diffusion"].image, finals["llm"].text, records, seconds, td.text if td else "")


def branch(text, prompt: str, step: int, candidate: int, max_new_tokens: int = 24, seed: int = 0) -> tuple[str, list[dict]]:
    """The LLM of a comparison, made to take its `candidate`-th most likely token (1-5) at step `step`, then
    greedy again: (the whole new text, its records in the `llm` format). Tokens before `step` are the
    comparison's own (same prompt, seed and max_new_tokens: greedy decoding repeats them exactly)."""
    check_branch(prompt, step, candidate, max_new_tokens, seed)
    question = DESCRIBE.format(prompt=prompt.strip())
    base = final(text.stream(question, "", max_new_tokens, 0.0, 1.0, seed, preview=False))
    if step > len(base.steps):
        raise InvalidInput("step", f"`step` must be at most {len(base.steps)}: the comparison's LLM stopped after that "
                                   f"many tokens; got {step}.")
    kept, at = base.steps[:step - 1], base.steps[step - 1]
    chosen = at.info["candidates"][candidate - 1]
    prefix = [s.info for s in kept] + [chosen]
    forced = {**llm_record(at), "token": chosen["token"], "probability": chosen["probability"], "branched": True}
    records = [llm_record(s) for s in kept] + [forced]
    if step < max_new_tokens:
        rest = final(text.stream(question, "", max_new_tokens - step, 0.0, 1.0, seed, preview=False, prefix=prefix))
        records += [{**llm_record(s), "step": step + s.index} for s in rest.steps]
        prefix += [s.info for s in rest.steps]
    return text.join_tokens(prefix).strip(), records


def switch(image, prompt: str, prompt_after: str, switch_step: int, num_inference_steps: int = 25, seed: int = 0):
    """The image model guided by `prompt` for steps 1..switch_step-1 and by `prompt_after` from `switch_step` on."""
    return final(image.stream(prompt, "", num_inference_steps, None, seed, preview=False, prompt_after=prompt_after,
                              switch_step=switch_step))


def knobs(image, text, prompt: str, seed: int = 0, guidance_scales=(1.0, 4.0, 9.0),
          temperatures=(0.0, 0.7, 1.5), max_new_tokens: int = 30) -> dict:
    """The same seed at a few settings of each model's main knob: {"guidance": [(g, image)], "temperature": [(t, text)]}."""
    check_knobs(prompt, seed)
    prompt = prompt.strip()
    images = [(g, final(image.stream(prompt, "", None, g, seed, preview=False)).image) for g in guidance_scales]
    texts = [(t, final(text.stream(DESCRIBE.format(prompt=prompt), "", max_new_tokens, t, 1.0, seed, preview=False)).text)
             for t in temperatures]
    return {"guidance": images, "temperature": texts}


def cost(image, text, text_diffusion=None, seed: int = 0) -> list[dict]:
    """Measure what each kind of model pays as its output grows, at a fixed number of steps for the diffusion
    models: one row per (model, size) with `size` (relative to that model's smallest output), `forward_passes`
    and `seconds`. An LLM's passes grow with its tokens; a diffusion model's stay at its step count."""
    rows = []
    d = image.spec.defaults
    steps, guidance = 10, d.get("guidance_scale", 5.0)
    low, high, multiple = image.limit("width")
    width = d.get("width", 512)
    sides = sorted({max(low, min(high, s - s % multiple)) for s in (width, width * 3 // 2, width * 2)})
    for side in sides:
        out = final(image.stream("a red circle", "", steps, guidance, seed, side, side, preview=False))
        rows.append({"model": "image diffusion", "size": round(side**2 / sides[0] ** 2, 2),
                     "forward_passes": steps * (2 if guidance > 1 else 1), "seconds": round(out.seconds, 3)})
    if text_diffusion is not None and not text_diffusion.missing:
        low, high, multiple = text_diffusion.limit("gen_length")
        lengths = sorted({low, max(low, (low + high) // 2 // multiple * multiple), high})
        for n in lengths:
            out = final(text_diffusion.stream("a red circle", n, 8, seed))
            rows.append({"model": "text diffusion", "size": round(n / lengths[0], 2), "forward_passes": len(out.steps),
                         "seconds": round(out.seconds, 3)})
    for n in (8, 16, 32):
        out = final(text.stream("Count from one to one hundred, in words.", "", n, 0.0, 1.0, seed, preview=False))
        rows.append({"model": "LLM", "size": round(len(out.steps) / 8, 2), "forward_passes": len(out.steps),
                     "seconds": round(out.seconds, 3)})
    return rows


def repeated_neighbours(text: str) -> int:
    """How many neighbouring words are the same word ("on a red red background"): the price of committing several
    tokens in one step, each chosen without seeing the others."""
    words = re.findall(r"[a-z]+", text.lower())
    return sum(a == b for a, b in zip(words, words[1:]))


def fill_gap(text_diffusion, text, prompt: str, template: str, seed: int = 0, max_new_tokens: int = 24) -> dict:
    """The same template to both kinds of model: text diffusion fills every `_` in place, reading both sides; the
    LLM can only go on from the words left of the first gap. {"template", "text_diffusion": {...}, "llm": {...}}."""
    check_text("template", template, 400)
    left = template.split("_", 1)[0].strip()
    filled = final(text_diffusion.infill_stream(prompt, template, seed=seed))
    continued = final(text.stream(DESCRIBE.format(prompt=prompt.strip()), "", max_new_tokens, 0.0, 1.0, seed,
                                  preview=False, answer_prefix=left + " " if left else ""))
    return {"template": template,
            "text_diffusion": {"text": filled.text, "steps": len(filled.steps), "seconds": round(filled.seconds, 3)},
            "llm": {"text": f"{left} {continued.text}".strip(), "given": left, "steps": len(continued.steps),
                    "seconds": round(continued.seconds, 3)}}


def dial(text_diffusion, text, prompt: str, seed: int = 0, block_lengths=(1, 4, 8, None)) -> list[dict]:
    """One prompt at several block lengths (None: the whole canvas), one step per token for block length 1 and
    8 steps otherwise, and the LLM beside them: per line the steps, forward passes, seconds, the text and how many
    neighbouring words repeat."""
    prompt = check_text("prompt", prompt, 300)
    n = text_diffusion.setting("gen_length", None, 32)
    rows = []
    for block in block_lengths:
        steps = n if block == 1 else 8
        out = final(text_diffusion.stream(prompt, n, steps, seed, block_length=block))
        rows.append({"model": f"text diffusion, block length {block or n}" + (" (whole canvas)" if block is None else ""),
                     "steps": out.run["steps"], "forward_passes": out.run["forward_passes"],
                     "seconds": round(out.seconds, 3), "repeated_neighbours": repeated_neighbours(out.text),
                     "text": out.text})
    llm = final(text.stream(DESCRIBE.format(prompt=prompt), "", n, 0.0, 1.0, seed, preview=False))
    rows.append({"model": "LLM (one token per step)", "steps": len(llm.steps), "forward_passes": len(llm.steps),
                 "seconds": round(llm.seconds, 3), "repeated_neighbours": repeated_neighbours(llm.text), "text": llm.text})
    return rows
