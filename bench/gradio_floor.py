"""Gradio's own price for one streamed event, as a floor under the app's: an app with no model, whose endpoints run
a CPU-bound torch job of a given length in Gradio's worker thread and then yield, as bench/wrapper_price.py's raw
call is timed against the same job run in the client's process.

- `/one`: the job, then one short text (a Textbox): what any streamed event costs here.
- `/text_diffusion`: the job, then the outputs the Text diffusion tab's final update sends (the same components, the
  values of a real run read from `--payload`: the app's last /text_diffusion message, as the browser received it).

    python bench/gradio_floor.py --port 7861 --seconds 0.045 --payload final.json   # serves until killed
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Job:
    """A CPU-bound torch job (matmuls on one thread, the app's threads per request) sized to take `seconds`."""

    def __init__(self, seconds: float):
        torch.set_num_threads(1)
        self.a = torch.randn(256, 256) / 16
        self.n = 20
        self()  # warm
        t = time.perf_counter()
        self()
        self.n = max(1, round(self.n * seconds / (time.perf_counter() - t)))

    def __call__(self) -> None:
        torch.set_num_threads(1)  # per thread: Gradio's worker thread, or the caller's
        x = self.a
        for _ in range(self.n):
            x = torch.tanh(x @ self.a)


def tab_values(payload: list):
    """The Text diffusion tab's final update (demo/text_diffusion_tab.py's show_run) rebuilt from the message the
    browser received: each value as the tab's function yields it, so Gradio postprocesses it as it does there."""
    import gradio as gr
    import pandas as pd

    text, canvas, progress, stats, records, replay, _state, per_step, order = payload
    return (text, [(c["token"], c["class_or_confidence"]) for c in canvas], progress, stats, records,
            gr.Slider(1, replay["maximum"], value=replay["value"], step=1, interactive=True),
            [None] * replay["maximum"],  # the steps the replay slider reads (Step objects in the app)
            pd.DataFrame(per_step["data"], columns=per_step["columns"]),
            pd.DataFrame(order["data"], columns=order["columns"]))


def build(job: Job, payload: list):
    import gradio as gr

    from demo.text_diffusion_tab import NEW, REVISED
    from demo.widgets import RunStats, StepProgress

    def one(prompt):
        job()
        yield "done"

    def text_diffusion(prompt):
        job()
        yield tab_values(payload)

    with gr.Blocks() as demo:  # the same output components as the tab (demo/text_diffusion_tab.py)
        prompt = gr.Textbox()
        text = gr.Textbox(interactive=False)
        outputs = [gr.Textbox(interactive=False),
                   gr.HighlightedText(combine_adjacent=False, show_legend=True,
                                      color_map={NEW: "#f59e0b", REVISED: "#ef4444"}),
                   StepProgress(), RunStats(), gr.JSON(), gr.Slider(1, 2, value=1, step=1, interactive=False),
                   gr.State([]), gr.BarPlot(x="step", y="tokens", color="kind"),
                   gr.ScatterPlot(x="position", y="step", color="confidence",
                                  tooltip=["position", "step", "confidence", "event"])]
        if len(payload) != len(outputs):  # the payload comes from the app: a tab changed since this was written
            raise SystemExit(f"the Text diffusion tab sends {len(payload)} outputs, this floor app {len(outputs)}: "
                             "make build() and tab_values() match demo/text_diffusion_tab.py again")
        run = gr.Button()
        run.click(one, prompt, text, api_name="one")
        run.click(text_diffusion, prompt, outputs, api_name="text_diffusion", preprocess=False)
    return demo


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True, help="the job's length (the raw call's)")
    p.add_argument("--payload", required=True, help="the app's last /text_diffusion message (JSON)")
    args = p.parse_args()
    demo = build(Job(args.seconds), json.loads(Path(args.payload).read_text()))
    demo.queue().launch(server_port=args.port, quiet=True)


if __name__ == "__main__":
    main()
