"""A diffusion tab's model on another instance of this app (`--image-backend URL`, `--audio-backend`,
`--video-backend`: a GPU machine, a ZeroGPU Space) through `gradio_client`, its step previews streamed as they
come. The remote's API returns data (the file, then the progress as JSON), which is all this module reads."""

import os
import threading

from .base import AudioOutput, BackendError, ImageOutput, Step, Timer, VideoOutput, stream_steps
from .checks import InvalidInput
from .recipe import recipe_in

# Each tab's API on this app (demo/diffusion_tab.py): its argument names in order (then "show previews"), and where
# the step preview sits in its outputs. The first output is the finished file, the second the progress as data:
# {"step", "total", "seconds", "done"}.
REMOTE_APIS = {
    "image": ("/image", ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "seed", "width", "height"), 0),
    "audio": ("/audio", ("prompt", "negative_prompt", "duration_s", "num_inference_steps", "guidance_scale", "seed"), 2),
    "video": ("/video", ("prompt", "negative_prompt", "num_frames", "num_inference_steps", "guidance_scale", "seed"), 2),
}


def _progress(value) -> dict | None:
    """A remote update's progress ({"step", "total", "seconds", "done"}); its updates may skip steps (paced)."""
    return value if isinstance(value, dict) and isinstance(value.get("step"), int) else None


def _file(value) -> str | None:
    """The local path of a file output as gradio_client hands it (a path, or a dict with one)."""
    if isinstance(value, dict):
        value = value.get("path") or value.get("image") or value.get("video")
        return _file(value)
    return value if isinstance(value, str) and os.path.exists(value) else None


class RemoteDiffusionPipeline:
    """A diffusion tab's model on another instance of this app (a GPU machine, a ZeroGPU Space), through
    `gradio_client`: the same `stream` as the local pipeline, one Step per streamed update of the remote tab (its
    step preview), then the same output object, read back from the finished file (the recipe inside it too).

    `local` is the pipeline this tab would run here: its spec gives the defaults and limits, and its checks refuse
    bad input before anything is sent. The remote's own model may be another: the tab names the remote."""

    def __init__(self, local, url: str, token: str | None = None):
        self.local, self.url, self.task, self.token = local, url, local.task, token
        self.spec, self.missing, self.tuning = local.spec, None, local.tuning
        self.lock = threading.BoundedSemaphore(max(1, self.tuning.remote_slots))  # in flight; the remote queues more
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def info(self) -> dict:
        return {**self.local.info, "missing": None, "engine": f"a remote app ({self.url})"}

    @property
    def vocabulary(self):
        return self.local.vocabulary

    @property
    def limits(self) -> dict:
        return self.local.limits

    def limit(self, name: str) -> tuple:
        return self.local.limit(name)

    def check_inputs(self, *args):
        return self.local.check_inputs(*args)

    @property
    def client(self):
        """The gradio_client Client, made on first use (it reads the remote app's API; HF_TOKEN for a private Space)."""
        with self._client_lock:
            if self._client is None:
                from gradio_client import Client

                try:
                    self._client = Client(self.url, token=self.token, verbose=False,
                                          httpx_kwargs={"timeout": self.tuning.backend_timeout_s})
                except Exception as exc:  # noqa: BLE001
                    raise BackendError(f"The {self.task} backend at {self.url} is not answering "
                                       f"({type(exc).__name__}: {exc}).") from None
            return self._client

    def stream(self, *args, preview: bool = True, prompt_after: str | None = None, switch_step: int | None = None,
               previews_per_s: float | None = None, **kwargs):  # previews_per_s: the remote app paces its own stream
        if prompt_after is not None or switch_step is not None:
            raise InvalidInput("prompt_after", "Switching prompts mid-way needs the image model in this process; the "
                                               f"image tab runs on a remote app ({self.url}).")
        api_name, names, preview_at = REMOTE_APIS[self.task]
        values = dict(zip(names, args)) | kwargs
        unknown = set(values) - set(names)
        if unknown:
            raise TypeError(f"unexpected arguments for {self.task}: {', '.join(sorted(unknown))}")
        d = self.spec.defaults
        values = {n: d.get(n) if values.get(n) is None and n not in ("prompt", "seed") else values.get(n, "")
                  for n in names}
        values["seed"] = values["seed"] if values["seed"] is not None else 0
        self.check_inputs(*values.values())

        def work(emit):
            from gradio_client.exceptions import AppError

            timer = Timer()
            steps, job = [], None
            try:
                job = self.client.submit(*values.values(), bool(preview), api_name=api_name)
                for update in job:
                    if update is None:
                        continue
                    found = _progress(update[1])
                    if found is None or (steps and steps[-1].index >= found["step"]):
                        continue  # the update that starts a run, or one that repeats a step (the remote's heartbeat)
                    if found.get("done"):  # the finished file, read below; its progress has the steps run
                        index, steps_n, path = found["step"], found["total"], None  # the last step, if paced out
                    else:
                        index, steps_n, path = found["step"], found["total"], _file(update[preview_at])
                    steps.append(Step(index=index, total=steps_n, elapsed=timer(),
                                      preview=self._read_preview(path) if preview and path else None))
                    if not emit(steps[-1]):
                        job.cancel()
                        return None
                outputs = job.outputs()
                result = job.result()  # raises the remote's error, if it failed
            except AppError as exc:
                raise BackendError(f"The {self.task} backend at {self.url} refused the request: {exc}") from None
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001  (connection lost, timeout)
                raise BackendError(f"The {self.task} backend at {self.url} failed ({type(exc).__name__}: {exc}).") from None
            final_file = _file(result[0]) or next((_file(o[0]) for o in reversed(outputs) if o and _file(o[0])), None)
            if final_file is None:
                raise BackendError(f"The {self.task} backend at {self.url} sent no {self.task} back.")
            return self._output(final_file, result, values, timer(), steps)

        return stream_steps(work, self.lock, join_s=self.tuning.backend_timeout_s)

    @staticmethod
    def _read_preview(path: str):
        from PIL import Image

        with Image.open(path) as image:
            return image.convert("RGB")

    def _output(self, path: str, result, values: dict, seconds: float, steps: list):
        recipe = recipe_in(path)
        if self.task == "image":
            from PIL import Image

            with Image.open(path) as image:
                image.load()
                return ImageOutput(image=image.copy(), seed=int(values["seed"]), seconds=seconds, steps=steps, recipe=recipe)
        if self.task == "audio":
            import soundfile

            audio, rate = soundfile.read(path, dtype="float32")
            return AudioOutput(rate, audio if audio.ndim == 1 else audio.mean(1), int(values["seed"]), seconds, steps, recipe)
        import imageio_ffmpeg
        from PIL import Image

        reader = imageio_ffmpeg.read_frames(path)
        meta = next(reader)
        # The frames as the model made them: the tab's frame gallery (PNGs); the MP4 is scaled up for the browser.
        gallery = [_file(item) for item in (result[3] if len(result) > 3 and isinstance(result[3], list) else [])]
        if gallery and all(gallery):
            reader.close()
            frames = [self._read_preview(f) for f in gallery]
        else:
            w, h = meta["size"]
            frames = [Image.frombytes("RGB", (w, h), bytes(f)) for f in reader]
        return VideoOutput(frames=frames, fps=round(meta.get("fps", 8)), seed=int(values["seed"]), seconds=seconds,
                           steps=steps, recipe=recipe)
