"""What every model family needs to know about its model: the spec (id, licence, defaults, limits), where a
bundled model lives, and the closed vocabulary it was trained on. A leaf: it imports nothing of this project."""

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models"


@dataclass(frozen=True)
class ModelSpec:
    model_id: str  # Hub id, or a folder (relative paths are under the repository root)
    licence: str  # shown in the UI and README
    defaults: dict = field(default_factory=dict)  # UI defaults for this model (steps, guidance, size...)
    limits: dict = field(default_factory=dict)  # per-model input ranges, e.g. {"width": (256, 768, 64)}
    motion_adapter: str | None = None  # video: a MotionAdapter folder / Hub id / single .safetensors URL
    gguf_wheel: str | None = None  # text: a pip package shipping the GGUF file (bundled SmolLM2)
    preview_decoder: str | None = None  # image / video: an AutoencoderTiny for cheap step previews (else the VAE)


def resolve_path(model_id: str) -> str:
    """A relative `models/...` id points into this repository; anything else is a Hub id or a path."""
    local = ROOT / model_id
    return str(local) if not os.path.isabs(model_id) and model_id.startswith("models/") else model_id


def known_words(model_id: str) -> list[str] | None:
    """The closed vocabulary of a bundled model (from its training_info.json), or None for Hub models."""
    info = Path(resolve_path(model_id)) / "training_info.json"
    return json.loads(info.read_text())["vocabulary"] if info.exists() else None


def unknown_words(prompt: str, vocabulary: list[str] | None) -> list[str]:
    """Words of `prompt` that a closed-vocabulary model has never seen (empty for open models).

    Vocabulary entries may be phrases ("moving left": one token of the video model); their words count as known.
    """
    if not vocabulary:
        return []
    known = {word.lower() for entry in vocabulary for word in entry.split()}
    return [w for w in dict.fromkeys(re.findall(r"[a-z]+", prompt.lower())) if w not in known]


def missing_message(task: str, spec: ModelSpec) -> str | None:
    """Why a bundled model cannot load (its folder is absent), with how to get it; None if it can."""
    needed = [p for p in (spec.model_id, spec.motion_adapter) if p and p.startswith("models/")]
    absent = [p for p in needed if not (ROOT / p / "model_index.json").exists() and not (ROOT / p / "config.json").exists()]
    if not absent:
        return None
    script = {"image": "train_image.py", "audio": "train_audio.py", "video": "train_video.py",
              "text_diffusion": "train_text_diffusion.py"}.get(task, "")
    return (f"The bundled {task} model is not in this checkout ({', '.join(absent)} is missing). "
            f"Train it with `python training/{script}`, or start the app with `--preset small` "
            f"(downloads a Hub model) or `--{task}-model HUB_ID`.")


