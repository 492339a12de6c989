"""One idea, both kinds of model, step by step: the diffusion model paints the prompt while the LLM
describes it. Both run at once through the one step interface; their steps arrive interleaved.

    for side, item in compare_stream(image, text, "a red circle on a blue background"):
        ...  # side is "diffusion" or "llm"; item a Step, then that side's final output
"""

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .base import Step, Timer, check_range, check_seed, check_text, final

DESCRIBE = "In one short sentence, describe a picture of {prompt}."


@dataclass
class CompareOutput:
    image: object  # PIL image
    text: str
    records: dict  # {"diffusion": [...], "llm": [...]} one record per step (see `records`)
    seconds: dict  # {"diffusion": s, "llm": s}


def diffusion_record(step: Step, guidance_scale: float) -> dict:
    # classifier-free guidance runs the UNet on the prompt and on the empty prompt: two passes a step
    return {"step": step.index, "timestep": step.info.get("timestep"), "seconds": step.info.get("seconds"),
            "elapsed": round(step.elapsed, 4), "forward_passes": 2 if guidance_scale > 1 else 1}


def llm_record(step: Step) -> dict:
    return {"step": step.index, "token": step.info["token"], "probability": step.info["probability"],
            "candidates": step.info["candidates"], "seconds": step.info.get("seconds"),
            "elapsed": round(step.elapsed, 4), "forward_passes": 1}


def compare_stream(image, text, prompt: str, num_inference_steps: int | None = None, max_new_tokens: int = 40,
                   seed: int = 0, guidance_scale: float | None = None, preview: bool = True) -> Iterator[tuple[str, object]]:
    """Yield (side, Step) as either model steps, then ("done", CompareOutput)."""
    prompt = check_text("prompt", prompt, 300)
    check_range("max_new_tokens", max_new_tokens, 1, 256, integer=True)
    check_seed(seed)
    guidance_scale = image.spec.defaults.get("guidance_scale", 5.0) if guidance_scale is None else guidance_scale
    streams = {  # each pipeline checks its own inputs when its stream is made, before anything runs
        "diffusion": image.stream(prompt, "", num_inference_steps, guidance_scale, seed, preview=preview),
        "llm": text.stream(DESCRIBE.format(prompt=prompt), "", max_new_tokens, 0.0, 1.0, seed, preview=preview),
    }
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def drain(side: str) -> None:
        stream = streams[side]
        try:
            for item in stream:
                items.put((side, item))
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001  (re-raised by the consumer)
            items.put((side, exc))
        finally:
            stream.close()  # cancels that model's work if we left early
            items.put((side, None))

    threads = [threading.Thread(target=drain, args=(side,), daemon=True) for side in streams]
    timer = Timer()
    for t in threads:
        t.start()
    finals: dict = {}
    try:
        running = len(threads)
        while running:
            side, item = items.get()
            if item is None:
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
    records = {"diffusion": [diffusion_record(s, guidance_scale) for s in finals["diffusion"].steps],
               "llm": [llm_record(s) for s in finals["llm"].steps]}
    seconds = {"diffusion": round(finals["diffusion"].seconds, 3), "llm": round(finals["llm"].seconds, 3),
               "wall": round(timer(), 3)}
    yield "done", CompareOutput(finals["diffusion"].image, finals["llm"].text, records, seconds)


def knobs(image, text, prompt: str, seed: int = 0, guidance_scales=(1.0, 4.0, 9.0),
          temperatures=(0.0, 0.7, 1.5), max_new_tokens: int = 30) -> dict:
    """The same seed at a few settings of each model's main knob: {"guidance": [(g, image)], "temperature": [(t, text)]}."""
    prompt = check_text("prompt", prompt, 300)
    check_seed(seed)
    images = [(g, final(image.stream(prompt, "", None, g, seed, preview=False)).image) for g in guidance_scales]
    texts = [(t, final(text.stream(DESCRIBE.format(prompt=prompt), "", max_new_tokens, t, 1.0, seed, preview=False)).text)
             for t in temperatures]
    return {"guidance": images, "temperature": texts}
