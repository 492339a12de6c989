"""Launch one tab on its own, on the bundled preset: `python -m demo.image_tab` (handy while working on a tab)."""

import gradio as gr

from demo.ui import CSS


def launch_tab(task: str, build) -> None:
    from app import backend_for_tab  # the model side, imported only when a tab runs alone

    kwargs = backend_for_tab(task)
    with gr.Blocks(title=f"{task} tab") as demo:
        build(**kwargs)
    demo.queue().launch(css=CSS)
