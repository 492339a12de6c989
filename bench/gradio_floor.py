"""Gradio's own price for one streamed event: the floor under the app's. A Gradio app with no code of ours, whose
endpoints make the raw `LLaDA2Pipeline` call (bench.raw_text_diffusion: the bundled model, greedy, no step callback)
in Gradio's worker thread and then yield once; bench/wrapper_price.py times them against the same call in its own
process, as it times the app's /text_diffusion.

- `/one`: the call, then one short text (a Textbox): what any streamed event costs here.
- `/text_diffusion`: the call, then the outputs the Text diffusion tab's final update sends (the same components, the
  values of a real run read from `--payload`: the app's last /text_diffusion message, as the browser received it).

    python bench/gradio_floor.py --port 7861 --payload last.json --prompt "..." --gen-length 32 --steps 16 --threads 1
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import raw_text_diffusion  # noqa: E402
from demo.text_diffusion_tab import NEW, REVISED  # noqa: E402
from demo.widgets import RunStats, StepProgress  # noqa: E402
from pipelines.presets import get_spec  # noqa: E402
from pipelines.text_diffusion import TextDiffusionPipeline  # noqa: E402


def tab_values(payload: list) -> tuple:
    """The Text diffusion tab's final update (demo/text_diffusion_tab.py's show_run) rebuilt from the message the
    browser received: each value as the tab's function yields it, so Gradio postprocesses it as it does there."""
    import gradio as gr
    import pandas as pd

    text, canvas, progress, stats, records, replay, _steps, per_step, order = payload
    return (text, [(c["token"], c["class_or_confidence"]) for c in canvas], progress, stats, records,
            gr.Slider(1, replay["maximum"], value=replay["value"], step=1, interactive=True),
            [None] * replay["maximum"],  # the steps the replay slider reads (Step objects in the app)
            pd.DataFrame(per_step["data"], columns=per_step["columns"]),
            pd.DataFrame(order["data"], columns=order["columns"]))


def build(raw, payload: list):
    import gradio as gr

    def one():
        raw()
        yield "done"

    def text_diffusion():
        raw()
        yield tab_values(payload)

    with gr.Blocks() as demo:  # the Text diffusion tab's output components (demo/text_diffusion_tab.py)
        text = gr.Textbox(interactive=False)
        outputs = [gr.Textbox(interactive=False),
                   gr.HighlightedText(combine_adjacent=False, show_legend=True,
                                      color_map={NEW: "#f59e0b", REVISED: "#ef4444"}),
                   StepProgress(), RunStats(), gr.JSON(), gr.Slider(1, 2, value=1, step=1, interactive=False),
                   gr.State([]), gr.BarPlot(x="step", y="tokens", color="kind"),
                   gr.ScatterPlot(x="position", y="step", color="confidence",
                                  tooltip=["position", "step", "confidence", "event"])]
        if len(payload) != len(outputs):  # the payload comes from the app: the tab changed since this was written
            raise SystemExit(f"the Text diffusion tab sends {len(payload)} outputs, this floor app {len(outputs)}: "
                             "make build() and tab_values() match demo/text_diffusion_tab.py again")
        run = gr.Button()
        run.click(one, None, text, api_name="one")
        run.click(text_diffusion, None, outputs, api_name="text_diffusion")
    return demo


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--payload", required=True, help="the app's last /text_diffusion message (JSON)")
    # the request bench/wrapper_price.py times (its TEXT_DIFFUSION), passed in rather than written again here
    p.add_argument("--prompt", required=True)
    p.add_argument("--gen-length", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--threads", type=int, required=True, help="torch's intra-op threads (the app's per request)")
    args = p.parse_args()
    ours = TextDiffusionPipeline(get_spec("text_diffusion", "bundled"), device="cpu")
    raw = raw_text_diffusion(ours, args.prompt, args.gen_length, args.steps, args.threads)
    raw()  # the model loaded before the first request
    demo = build(raw, json.loads(Path(args.payload).read_text()))
    demo.queue(default_concurrency_limit=1).launch(server_port=args.port, quiet=True)


if __name__ == "__main__":
    main()
