"""Outputs carry their recipe: how each image, clip and video was made, inside the file itself.

PNGs get a `parameters` text chunk as AUTOMATIC1111 writes it (so other tools read it too), WAVs a RIFF
INFO chunk (title = the prompt, comment = the recipe; where soundfile and players keep them), MP4s the
container's comment tag. "Load settings" reads a file back into the tab that made it.
"""

from .checks import InvalidInput

# Recipe keys (AUTOMATIC1111's "parameters" text: prompt, "Negative prompt: ...", then "Key: value, ...") <-> our
# argument names. "Task" says which tab made the file, so "Load settings" can refuse another tab's file.
RECIPE_KEYS = {"Task": "task", "Steps": "num_inference_steps", "CFG scale": "guidance_scale", "Seed": "seed",
               "Size": "size", "Duration": "duration_s", "Frames": "num_frames", "Model": "model"}


def recipe_text(task: str, prompt: str, negative_prompt: str = "", **settings) -> str:
    """How an output was made, as AUTOMATIC1111 writes a PNG's `parameters` chunk:

        a red circle
        Negative prompt: blurry
        Task: image, Steps: 25, CFG scale: 3.0, Seed: 7, Size: 64x64, Model: models/tiny-shapes-image

    `settings` use our argument names (num_inference_steps, guidance_scale, seed, width + height, duration_s,
    num_frames, model); commas in the model id are not expected.
    """
    if "width" in settings and "height" in settings:
        settings["size"] = f"{settings.pop('width')}x{settings.pop('height')}"
    settings["task"] = task
    fields = ", ".join(f"{key}: {settings[name]}" for key, name in RECIPE_KEYS.items() if name in settings)
    return "\n".join([prompt] + ([f"Negative prompt: {negative_prompt}"] if negative_prompt else []) + [fields])


def parse_recipe(text: str) -> dict:
    """The inverse of `recipe_text`: {"task", "prompt", "negative_prompt", "num_inference_steps", ...} with numbers
    as numbers. Raises ValueError when the text is not such a recipe."""
    lines = (text or "").strip().split("\n")
    if len(lines) < 2 or not lines[-1].startswith("Task: "):
        raise InvalidInput("file", "This file has no recipe from this app (no 'Task: ...' line in its parameters).")
    out = {"prompt": "\n".join(line for line in lines[:-1] if not line.startswith("Negative prompt: ")),
           "negative_prompt": next((line[len("Negative prompt: "):] for line in lines[:-1]
                                    if line.startswith("Negative prompt: ")), "")}
    for field in lines[-1].split(", "):
        key, _, value = field.partition(": ")
        if key in RECIPE_KEYS:
            out[RECIPE_KEYS[key]] = value
    for name, kind in (("num_inference_steps", int), ("seed", int), ("num_frames", int), ("guidance_scale", float),
                       ("duration_s", float)):
        if name in out:
            out[name] = kind(out[name])
    if "size" in out:
        out["width"], out["height"] = (int(v) for v in out.pop("size").split("x"))
    return out


def wav_info(path_or_file) -> dict:
    """{"title", "comment", "created"} of a WAV, as soundfile reads its LIST/INFO chunk (empty strings when absent)."""
    import soundfile

    with soundfile.SoundFile(path_or_file) as f:
        return {"title": f.title, "comment": f.comment, "created": f.date}


def read_recipe(path: str) -> dict:
    """The recipe a file made by this app carries (PNG `parameters`, WAV INFO comment, MP4 comment), parsed."""
    return parse_recipe(recipe_in(path))


def recipe_in(path: str) -> str:
    """The recipe text a PNG, WAV or MP4 carries ("" when it has none)."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix == "png":
        from PIL import Image

        with Image.open(path) as image:
            text = image.info.get("parameters", "")
    elif suffix == "wav":
        try:
            text = wav_info(path)["comment"]
        except RuntimeError as exc:  # soundfile's LibsndfileError: not a readable WAV
            raise InvalidInput("file", f"`file` is not a WAV this app can read: {exc}") from None
    elif suffix == "mp4":
        import subprocess

        import imageio_ffmpeg

        probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                               capture_output=True, text=True, timeout=30)
        meta, lines = probe.stdout, []
        for line in meta.splitlines():  # ffmetadata escapes newlines in values as a trailing backslash
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + "\n" + line
            else:
                lines.append(line)
        text = next((line[len("comment="):] for line in lines if line.startswith("comment=")), "")
    else:
        raise InvalidInput("file", f"`file` must be a PNG, WAV or MP4 made by this app; got a .{suffix} file.")
    return text
