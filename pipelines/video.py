"""Text-to-video: AnimateDiff (a MotionAdapter on a text-to-image model: the bundled tiny one or an
SD-1.5 checkpoint with AnimateDiff-Lightning) or any diffusers text-to-video pipeline (Wan, LTX),
as a stream of denoising steps; each preview is a strip of predicted clean frames."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # annotations only: torch is imported on first use
    import torch

from .base import Step, Timer, VideoOutput, created_now, output_path, stream_steps
from .checks import MAX_PROMPT_CHARS, check_range, check_seed, check_text
from .diffusion import DiffusionModel, denoise, generator_for
from .recipe import recipe_text
from .specs import known_words, resolve_path

FPS = 8


class VideoPipeline(DiffusionModel):
    task = "video"
    LIMITS = {"num_inference_steps": (1, 100), "guidance_scale": (0.0, 20.0), "num_frames": (4, 32)}
    frame_phrases: dict[str, int] = {}  # phrase -> frames it has one embedding each for (see frame_prompts)

    def load(self, path: str):
        from diffusers import AnimateDiffPipeline, DiffusionPipeline, MotionAdapter

        if not self.spec.motion_adapter:  # a native text-to-video pipeline (Wan, LTX, CogVideoX...)
            return DiffusionPipeline.from_pretrained(path, dtype=self.dtype)
        adapter_id = resolve_path(self.spec.motion_adapter)
        if adapter_id.endswith(".safetensors"):  # e.g. AnimateDiff-Lightning ships single files
            adapter = MotionAdapter.from_single_file(adapter_id, dtype=self.dtype)
        else:
            adapter = MotionAdapter.from_pretrained(adapter_id, dtype=self.dtype)
        pipe = AnimateDiffPipeline.from_pretrained(path, motion_adapter=adapter, dtype=self.dtype)
        if os.path.isdir(adapter_id):
            self.frame_phrases = load_extras(pipe, adapter_id)
        if "lightning" in adapter_id.lower():  # the few-step adapter expects these sampler settings
            from diffusers import EulerDiscreteScheduler

            pipe.scheduler = EulerDiscreteScheduler.from_config(
                pipe.scheduler.config, timestep_spacing="trailing", beta_schedule="linear")
        return pipe

    @property
    def vocabulary(self) -> list[str] | None:
        words = known_words(self.spec.model_id)
        adapter_words = known_words(self.spec.motion_adapter) if self.spec.motion_adapter else None
        return sorted(set(words or []) | set(adapter_words or [])) or None

    @property
    def info(self) -> dict:
        return {**super().info, "motion_adapter": self.spec.motion_adapter}

    def check_inputs(self, prompt, negative_prompt, num_frames, num_inference_steps, guidance_scale, seed) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        check_text("negative_prompt", negative_prompt, MAX_PROMPT_CHARS, optional=True)
        check_range("num_frames", num_frames, *self.limit("num_frames"), integer=True)
        check_range("num_inference_steps", num_inference_steps, *self.limit("num_inference_steps"), integer=True)
        check_range("guidance_scale", guidance_scale, *self.limit("guidance_scale"))
        check_seed(seed)

    def stream(self, prompt: str, negative_prompt: str = "", num_frames: int | None = None,
               num_inference_steps: int | None = None, guidance_scale: float | None = None, seed: int = 0,
               preview: bool = True, previews_per_s: float | None = None) -> Iterator[Step | VideoOutput]:
        """Yield one Step per denoising iteration (preview: first/middle/last predicted frames), then a VideoOutput.

        `previews_per_s`: at most that many step previews a second, as ImagePipeline.stream."""
        d = self.spec.defaults
        num_frames = self.setting("num_frames", num_frames, 16)
        num_inference_steps = self.setting("num_inference_steps", num_inference_steps, 25)
        guidance_scale = self.setting("guidance_scale", guidance_scale, 5.0)
        self.check_inputs(prompt, negative_prompt, num_frames, num_inference_steps, guidance_scale, seed)

        def work(emit):
            pipe = self.pipe  # loads on first use; not counted in the timings
            timer = Timer()
            kwargs = dict(prompt=prompt.strip(), num_frames=int(num_frames), num_inference_steps=int(num_inference_steps),
                          guidance_scale=float(guidance_scale), generator=generator_for(int(seed)), output_type="pil",
                          width=d.get("width", 512), height=d.get("height", 512))
            if negative_prompt and negative_prompt.strip() and guidance_scale > 1:
                kwargs["negative_prompt"] = negative_prompt.strip()
            kwargs["prompt"] = self.pipeline_prompt(pipe, kwargs["prompt"], int(num_frames))
            decode = (lambda x0: self.decode_preview(pipe, x0)) if preview else None
            output, steps = denoise(pipe, kwargs, emit, int(num_inference_steps), decode, timer, threads=self.threads,
                                    previews_per_s=previews_per_s)
            recipe = recipe_text("video", prompt.strip(), (negative_prompt or "").strip(),
                                 num_inference_steps=int(num_inference_steps), guidance_scale=float(guidance_scale),
                                 seed=int(seed), num_frames=int(num_frames), model=self.spec.model_id)
            return VideoOutput(frames=list(output.frames[0]), fps=FPS, seed=int(seed), seconds=timer(), steps=steps,
                               recipe=recipe)

        return stream_steps(work, self.lock, self.threads)

    def pipeline_prompt(self, pipe, prompt: str, num_frames: int) -> str | dict[int, str]:
        """What to pass as the pipeline's `prompt`: per-frame prompts (see frame_prompts) for a model with
        per-frame phrase embeddings, through diffusers' FreeNoise with one context window for all
        frames (otherwise plain AnimateDiff); else `prompt` itself."""
        if not self.frame_phrases:
            return prompt
        pipe.enable_free_noise(context_length=num_frames, context_stride=num_frames, weighting_scheme="flat")
        return frame_prompts(prompt, self.frame_phrases, num_frames)

    def decode_preview(self, pipe, x0: torch.Tensor):
        """First, middle and last predicted-clean frames side by side (AnimateDiff's per-frame image VAE only), through
        the preview decoder where the spec has one."""
        import torch

        if x0.ndim != 5 or type(pipe).__name__ != "AnimateDiffPipeline":
            return None  # video VAEs (Wan, LTX) decode whole clips: too costly to run at every step
        frames = x0[0].permute(1, 0, 2, 3)  # (C, F, H, W) -> (F, C, H, W)
        images = self.decode_latents(pipe, frames[[0, frames.shape[0] // 2, -1]])
        strip = torch.cat(list(images), dim=-1)  # side by side
        return Image.fromarray(((strip.permute(1, 2, 0) + 1) * 127.5).round().byte().cpu().numpy())


def frame_token(phrase: str, k: int) -> str:
    """The token of `phrase`'s embedding in frame `k` (training/train_video.py learns them)."""
    return f"{phrase}@{k}"


FRAME_TOKEN = re.compile(r"(.+)@(\d+)")  # what frame_token makes: (phrase, k)


def frame_prompts(prompt: str, frame_phrases: dict[str, int], num_frames: int) -> dict[int, str]:
    """Per-frame prompts {frame index: prompt} for a model with per-frame phrase embeddings.

    A phrase trained with K frame tokens ("moving left@0" ... "moving left@7") is replaced, in
    keyframe k, by its k-th token; the K keyframes are spread evenly over `num_frames` frames, and
    the pipeline interpolates the text embeddings of the frames between them. Without a phrase, the
    prompt is the same for every frame.
    """
    text = " ".join(prompt.lower().split())
    patterns = {p: re.compile(rf"\b{re.escape(p)}\b") for p in frame_phrases}
    found = [p for p, pattern in patterns.items() if pattern.search(text)]
    if not found:
        return {0: text}
    tokens = min(frame_phrases[p] for p in found)
    if num_frames >= tokens:  # (frame, token) pairs: each token at its place in the clip...
        pairs = [(round(k * (num_frames - 1) / max(tokens - 1, 1)), k) for k in range(tokens)]
    else:  # ...or, for a shorter clip, each frame the token nearest its place
        pairs = [(f, round(f * (tokens - 1) / max(num_frames - 1, 1))) for f in range(num_frames)]
    out = {}
    for frame, k in pairs:
        out[frame] = text
        for p in found:
            out[frame] = patterns[p].sub(frame_token(p, k), out[frame])
    return out


def load_extras(pipe, folder: str) -> dict[str, int]:
    """Load what a motion folder may carry beside its MotionAdapter (the bundled one has both):

    - `pytorch_lora_weights.safetensors`: a LoRA for the image UNet trained with the adapter, fused
      into the weights (so inference costs nothing extra);
    - `words.safetensors`: textual-inversion embeddings ({token: 1 x dim}) for tokens the image
      model's tokenizer lacks. A token "<phrase>@<k>" is the phrase's embedding in frame k.

    Returns {phrase: number of frame embeddings} for the phrases that have them (see frame_prompts).
    """
    from safetensors.torch import load_file

    if os.path.exists(os.path.join(folder, "pytorch_lora_weights.safetensors")):
        pipe.load_lora_weights(folder, weight_name="pytorch_lora_weights.safetensors", adapter_name="motion")
        pipe.fuse_lora(components=["unet"])
        pipe.unload_lora_weights()  # keeps the fused weights, drops the LoRA layers
    words_file = os.path.join(folder, "words.safetensors")
    if os.path.exists(words_file):
        words = load_file(words_file)
        pipe.load_textual_inversion([{w: e.to(pipe.text_encoder.dtype)} for w, e in words.items()], token=list(words))
        phrases = [m[1] for m in map(FRAME_TOKEN.fullmatch, words) if m]
        return {p: phrases.count(p) for p in dict.fromkeys(phrases)}
    return {}


def write_mp4(frames: list, fps: int, path: str | None = None, min_side: int = 256, comment: str = "") -> str:
    """Encode frames as a browser-playable H.264 MP4 (yuv420p), upscaled crisply to at least `min_side` px;
    `comment` (the recipe) goes into the container's comment tag."""
    import imageio_ffmpeg

    first = frames[0]
    scale = max(1, -(-min_side // min(first.size)))  # integer nearest-neighbour upscale keeps pixels sharp
    width, height = first.width * scale, first.height * scale
    width, height = width + width % 2, height + height % 2  # yuv420p needs even sides
    path = path or output_path(".mp4")
    writer = imageio_ffmpeg.write_frames(path, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, output_params=["-movflags", "+faststart", "-crf", "18"]
                                         + ["-metadata", f"creation_time={created_now()}"]
                                         + (["-metadata", f"comment={comment}"] if comment else []))
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGB").resize((width, height), Image.NEAREST))))
    writer.close()
    return path
