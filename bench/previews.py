"""Step previews: the bundled image model's preview decoder (an AutoencoderTiny, training/train_preview.py) against
the full VAE decode it replaced.

    python bench/previews.py [--out docs/previews.png]

For a few prompts of the bundled image model, at six steps of 25: the milliseconds of each preview against a
decode and against the step itself (one thread), how far the preview's pixels are from the decode's (mean absolute
difference, 0-255), and a strip of both (previews on top, decodes below) to look at.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.base import Tuning, final  # noqa: E402
from pipelines.image import ImagePipeline  # noqa: E402
from pipelines.presets import get_spec  # noqa: E402

PROMPTS = ["a large red circle in the center on a blue background", "a small yellow triangle at the top on a black "
           "background", "a green square on the left on a white background"]
SHOW = (1, 3, 6, 10, 16, 25)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "previews.png"))
    args = p.parse_args()
    torch.set_num_threads(1)
    model = ImagePipeline(get_spec("image", "bundled"), device="cpu", tuning=Tuning(image_batch=1))
    pipe = model.pipe
    t = time.perf_counter()
    tiny = model.preview_decoder()
    load_ms = (time.perf_counter() - t) * 1000
    assert tiny is not None, "no preview decoder: run training/train_preview.py"
    recorded: list = []
    decode_preview = model.decode_preview
    model.decode_preview = lambda p, x0, **kw: recorded.append(x0.clone()) or decode_preview(p, x0, **kw)
    rows, cost, diffs, steps_ms = [], {"preview": [], "decode": []}, [], []
    for prompt in PROMPTS:
        recorded.clear()
        out = final(model.stream(prompt, "", 25, 3.0, 0, 64, 64, preview=True))
        steps_ms += [s.info["seconds"] * 1000 for s in out.steps]
        top, bottom = [], []
        for k in SHOW:
            x0 = recorded[k - 1]
            t = time.perf_counter()
            cheap = pipe.image_processor.postprocess(model.decode_latents(pipe, x0), output_type="pil")[0]  # the app's path
            cost["preview"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            with torch.no_grad():
                image = pipe.vae.decode(x0 / pipe.vae.config.scaling_factor).sample
            full = pipe.image_processor.postprocess(image, output_type="pil")[0]
            cost["decode"].append((time.perf_counter() - t) * 1000)
            diffs.append(sum(abs(a - b) for a, b in zip(cheap.tobytes(), full.tobytes())) / len(full.tobytes()))
            top.append(cheap)
            bottom.append(full)
        rows += [top, bottom]
    sheet = Image.new("RGB", (64 * len(SHOW), 64 * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(image, (64 * c, 64 * r))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(args.out)
    step = statistics.median(steps_ms)
    prev, dec = statistics.median(cost["preview"]), statistics.median(cost["decode"])
    print(f"preview decoder loaded in {load_ms:.0f} ms; a step (UNet, 1 thread): {step:.1f} ms")
    print(f"preview: {prev:.2f} ms ({prev / step:.1%} of a step); VAE decode: {dec:.1f} ms ({dec / step:.0%} of a step); "
          f"decode / preview: {dec / prev:.0f}x")
    print(f"mean |preview - decode| per channel: {statistics.mean(diffs):.1f} of 255 (steps {SHOW}); "
          f"at the last step: {statistics.mean(diffs[len(SHOW) - 1::len(SHOW)]):.1f}")
    print(f"strip: {args.out} (rows: preview, decode; per prompt)")


if __name__ == "__main__":
    main()
