"""Text-to-image: any diffusers text-to-image pipeline (the bundled tiny StableDiffusionPipeline,
SD-Turbo, SDXL-Turbo...) as a stream of denoising steps, each previewed as the predicted clean image."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: torch is imported on first use
    import torch

from .base import ImageOutput, Step, Timer, created_now, stream_steps
from .checks import MAX_PROMPT_CHARS, InvalidInput, check_multiple, check_range, check_seed, check_text
from .diffusion import DiffusionBatcher, DiffusionModel, Request, denoise, generator_for
from .recipe import recipe_text


class ImagePipeline(DiffusionModel):
    task = "image"
    LIMITS = {"num_inference_steps": (1, 100), "guidance_scale": (0.0, 20.0), "width": (256, 1024, 64),
              "height": (256, 1024, 64)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        batch = self.tuning.image_batch  # concurrent requests with the same settings, denoised together
        self.batcher = DiffusionBatcher(self._run_batch, self.lock, batch) if batch > 1 else None

    def check_inputs(self, prompt, negative_prompt, num_inference_steps, guidance_scale, seed, width, height) -> None:
        check_text("prompt", prompt, MAX_PROMPT_CHARS)
        check_text("negative_prompt", negative_prompt, MAX_PROMPT_CHARS, optional=True)
        check_range("num_inference_steps", num_inference_steps, *self.limit("num_inference_steps"), integer=True)
        check_range("guidance_scale", guidance_scale, *self.limit("guidance_scale"))
        check_seed(seed)
        for name, value in (("width", width), ("height", height)):
            low, high, multiple = self.limit(name)
            check_range(name, value, low, high, integer=True)
            check_multiple(name, value, multiple)

    def stream(self, prompt: str, negative_prompt: str = "", num_inference_steps: int | None = None,
               guidance_scale: float | None = None, seed: int = 0, width: int | None = None,
               height: int | None = None, preview: bool = True, prompt_after: str | None = None,
               switch_step: int | None = None, previews_per_s: float | None = None) -> Iterator[Step | ImageOutput]:
        """Yield one Step per denoising iteration (preview: the predicted clean image), then an ImageOutput.

        `previews_per_s`: at most that many step previews a second (a screen's update rate; the first and last
        step always have one), for an image denoised alone; None: every step's (a batch has its own budget).

        With `prompt_after`, steps `switch_step`.. (1-based) are guided by `prompt_after` instead of `prompt`:
        the prompt embeddings are swapped in diffusers' `callback_on_step_end` after step `switch_step - 1`.
        """
        num_inference_steps = self.setting("num_inference_steps", num_inference_steps, 25)
        guidance_scale = self.setting("guidance_scale", guidance_scale, 5.0)
        width, height = self.setting("width", width, 512), self.setting("height", height, 512)
        self.check_inputs(prompt, negative_prompt, num_inference_steps, guidance_scale, seed, width, height)
        if prompt_after is not None:
            check_text("prompt_after", prompt_after, MAX_PROMPT_CHARS)
            check_range("switch_step", switch_step, 1, num_inference_steps, integer=True)
        elif self.batcher is not None:  # batched with concurrent requests of the same settings
            key = (int(num_inference_steps), float(guidance_scale), int(width), int(height))
            args = {"prompt": prompt.strip(), "negative_prompt": (negative_prompt or "").strip(), "seed": int(seed),
                    "preview": bool(preview), "previews_per_s": previews_per_s}
            return stream_steps(lambda emit: self.batcher.submit(key, args, emit), contextlib.nullcontext())

        def work(emit):
            pipe = self.pipe  # loads on first use; not counted in the timings
            timer = Timer()
            kwargs = dict(
                prompt=prompt.strip(), num_inference_steps=int(num_inference_steps), guidance_scale=float(guidance_scale),
                width=int(width), height=int(height), generator=generator_for(int(seed)),
            )
            if negative_prompt and negative_prompt.strip() and guidance_scale > 1:
                kwargs["negative_prompt"] = negative_prompt.strip()  # ignored (with a warning) without CFG
            decode = (lambda x0: self.decode_preview(pipe, x0)) if preview else None
            swap = None
            if prompt_after is not None:
                if int(switch_step) == 1:  # switched before the first step: prompt_after all along
                    kwargs["prompt"] = prompt_after.strip()
                else:
                    swap = self.prompt_switch(pipe, prompt_after.strip(), kwargs.get("negative_prompt", ""),
                                              float(guidance_scale), int(switch_step))
            output, steps = denoise(pipe, kwargs, emit, int(num_inference_steps), decode, timer, on_step_end=swap,
                                    threads=self.threads, previews_per_s=previews_per_s)
            return self._output(output.images[0], prompt.strip(), (negative_prompt or "").strip(), int(num_inference_steps),
                                float(guidance_scale), int(seed), int(width), int(height), timer(), steps)

        return stream_steps(work, self.lock, self.threads)

    def _run_batch(self, batch: list[Request]) -> None:
        """Denoise the batch's requests together (their common settings in `key`), each with its own prompt, negative
        prompt and seed; each gets its own steps, previews and ImageOutput."""
        import torch

        pipe = self.pipe
        steps_n, guidance, width, height = batch[0].key
        wanted = [r.args["preview"] for r in batch]
        # A batch's previews take at most this share of its time (see `denoise`); a request alone previews every step,
        # on a thread beside it.
        share = self.tuning.batch_preview_share if len(batch) > 1 else None
        if self.threads:  # a thread per request in the batch, up to the cores other processes left free (as measured
            # while the batch gathered: a team with a thread on a busy core waits for it at every barrier), less one
            # for a lone request's previews
            team = self.threads * len(batch)
            cores = (self.batcher.cores_free() if self.batcher and team > 1 else None) or os.cpu_count() or 1
            spare = share is None and any(wanted) and cores > 1
            torch.set_num_threads(max(1, min(cores - spare, team)))
        timer = Timer()
        kwargs = dict(prompt=[r.args["prompt"] for r in batch], num_inference_steps=steps_n, guidance_scale=guidance,
                      width=width, height=height, generator=[generator_for(r.args["seed"]) for r in batch])
        if guidance > 1 and any(r.args["negative_prompt"] for r in batch):  # "" guides as no negative prompt does
            kwargs["negative_prompt"] = [r.args["negative_prompt"] for r in batch]
        decode = (lambda x0: self.decode_previews(pipe, x0, wanted)) if any(wanted) else None
        own_steps: list[list[Step]] = [[] for _ in batch]

        def fan_out(step: Step | None) -> bool:
            """The batch's step, handed to each request still there with its own preview; False once none is."""
            for i, r in enumerate(batch):
                if not r.alive:
                    continue
                own = None
                if step is not None:
                    own = Step(step.index, step.total, step.elapsed, step.preview[i] if step.preview else None, dict(step.info))
                    own_steps[i].append(own)
                r.alive = r.emit(own) and r.alive
            return any(r.alive for r in batch)

        output, _ = denoise(pipe, kwargs, fan_out, steps_n, decode, timer, preview_share=share, threads=self.threads,
                            previews_per_s=batch[0].args["previews_per_s"] if len(batch) == 1 else None)
        for i, r in enumerate(batch):
            r.result = self._output(output.images[i], r.args["prompt"], r.args["negative_prompt"], steps_n, guidance,
                                    r.args["seed"], width, height, timer(), own_steps[i])

    def _output(self, image, prompt: str, negative_prompt: str, num_inference_steps: int, guidance_scale: float,
                seed: int, width: int, height: int, seconds: float, steps: list[Step]) -> ImageOutput:
        """The ImageOutput of a finished image, its recipe written into it."""
        recipe = recipe_text("image", prompt, negative_prompt, num_inference_steps=num_inference_steps,
                             guidance_scale=guidance_scale, seed=seed, width=width, height=height,
                             model=self.spec.model_id)
        image.info["parameters"] = recipe  # Gradio (and PIL with pnginfo) write it into the PNG
        image.info["Creation Time"] = created_now()  # a standard PNG keyword; makes every file unique
        return ImageOutput(image=image, seed=seed, seconds=seconds, steps=steps, recipe=recipe)

    def decode_previews(self, pipe, x0: torch.Tensor, wanted: list[bool]) -> list | None:
        """Previews of a batch's predicted-clean latents: an image for each request that wants one, else None."""
        picks = [i for i, w in enumerate(wanted) if w]
        images = self.decode_preview(pipe, x0[picks], all_images=True)
        if images is None:
            return None
        it = iter(images)
        return [next(it) if w else None for w in wanted]

    @staticmethod
    def prompt_switch(pipe, prompt_after: str, negative_prompt: str, guidance_scale: float, switch_step: int):
        """A `callback_on_step_end` hook that hands the pipeline `prompt_after`'s embeddings after step
        `switch_step - 1`, laid out as the pipeline keeps them (negative first when guiding)."""
        import torch

        if type(pipe).__name__ != "StableDiffusionPipeline":  # SDXL & co. also carry pooled embeddings
            raise InvalidInput("prompt_after", "Switching the prompt mid-way needs a StableDiffusionPipeline; this model "
                                               f"is {type(pipe).__name__}.")
        guided = guidance_scale > 1
        with torch.no_grad():
            positive, negative = pipe.encode_prompt(prompt_after, pipe.device, 1, guided, negative_prompt or None)[:2]
        embeds = torch.cat([negative, positive]) if guided else positive

        def swap(p, i, callback_kwargs):
            if i + 2 == switch_step:  # i is 0-based: the next step is switch_step
                callback_kwargs["prompt_embeds"] = embeds.to(callback_kwargs["prompt_embeds"].dtype)
            return callback_kwargs

        return swap

    def decode_preview(self, pipe, x0: torch.Tensor, all_images: bool = False):
        """A predicted-clean latent as a PIL image (all of the batch's, as a list, with `all_images`), through the
        preview decoder where the spec has one (4-D image latents only, else no preview)."""
        if x0.ndim != 4 or getattr(pipe, "vae", None) is None:
            return None  # packed latents (FLUX-style): not previewable without the pipeline's unpacking
        images = pipe.image_processor.postprocess(self.decode_latents(pipe, x0), output_type="pil")
        return images if all_images else images[0]
