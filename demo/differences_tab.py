"""Key differences tab: the article's comparison of diffusion models and LLMs, each row linked to the tab
that shows it live."""

import gradio as gr

DIFFERENCES = [
    ("Purpose and domain",
     "Diffusion models make **continuous** data: pixels, sound waves, video frames.",
     "LLMs make **discrete** data: text, as a sequence of tokens from a fixed vocabulary.",
     ["image", "audio", "text"]),
    ("Underlying principle",
     "Start from pure noise and **refine the whole output a little at every step** (denoising). Every step "
     "sees and changes everything at once: watch the step previews.",
     "Write **one token per step, left to right**. Each step is a probability distribution over the next token; "
     "earlier tokens are never revised: watch the candidates table.",
     ["image", "text"]),
    ("Applications",
     "Image generation, audio synthesis, video synthesis.",
     "Text generation, natural-language understanding, translation.",
     ["image", "audio", "video", "text", "understand", "translate"]),
]
TAB_TITLES = {"image": "Image", "audio": "Audio", "video": "Video", "text": "Text", "understand": "Understand",
              "translate": "Translate"}


def table_markdown() -> str:
    rows = "\n".join(f"| **{name}** | {diffusion} | {llm} |" for name, diffusion, llm, _ in DIFFERENCES)
    return "| | Diffusion model | LLM |\n|---|---|---|\n" + rows


def build(tabs: gr.Tabs) -> None:
    """The Key-differences tab; its buttons switch `tabs` to the tab that shows each point live."""
    gr.Markdown("## Diffusion vs LLM, in simple terms\n" + table_markdown())
    for name, _, _, targets in DIFFERENCES:
        with gr.Row():
            gr.Markdown(f"**{name}**: see it live in")
            for target in targets:
                button = gr.Button(TAB_TITLES[target], size="sm", min_width=80)
                button.click(lambda t=target: gr.Tabs(selected=t), None, tabs, api_visibility="private",
                             queue=False)
