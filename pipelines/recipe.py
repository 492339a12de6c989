"""Outputs carry their recipe: how each image, clip and video was made, inside the file itself.

PNGs get a `parameters` text chunk as AUTOMATIC1111 writes it (so other tools read it too), WAVs a RIFF
INFO chunk (title = the prompt, comment = the recipe; where soundfile and players keep them), MP4s the
container's comment tag. "Load settings" reads a file back into the tab that made it.
"""

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
        raise ValueError("This file has no recipe from this app (no 'Task: ...' line in its parameters).")
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


def info_chunk(title: str = "", comment: str = "", created: str = "") -> bytes:
    """A RIFF LIST/INFO chunk with INAM (title), ICMT (comment) and ICRD (creation date): where soundfile and most
    players keep them."""
    body = b""
    for tag, text in ((b"INAM", title), (b"ICMT", comment), (b"ICRD", created)):
        if text:
            data = text.encode("utf-8") + b"\0"
            body += tag + len(data).to_bytes(4, "little") + data + (b"\0" if len(data) % 2 else b"")
    return b"LIST" + (len(body) + 4).to_bytes(4, "little") + b"INFO" + body if body else b""


def wav_info(data: bytes) -> dict:
    """{"title", "comment", "created"} from a WAV's LIST/INFO chunk (empty strings when absent)."""
    out, pos = {"title": "", "comment": "", "created": ""}, 12
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if tag == b"LIST" and data[pos + 8:pos + 12] == b"INFO":
            sub = pos + 12
            while sub + 8 <= pos + 8 + size:
                key, n = data[sub:sub + 4], int.from_bytes(data[sub + 4:sub + 8], "little")
                text = data[sub + 8:sub + 8 + n].rstrip(b"\0").decode("utf-8", "replace")
                out[{b"INAM": "title", b"ICMT": "comment", b"ICRD": "created"}.get(key, "other")] = text
                sub += 8 + n + n % 2
        pos += 8 + size + size % 2
    return out


def read_recipe(path: str) -> dict:
    """The recipe a file made by this app carries (PNG `parameters`, WAV INFO comment, MP4 comment), parsed."""
    suffix = str(path).lower().rsplit(".", 1)[-1]
    if suffix == "png":
        from PIL import Image

        with Image.open(path) as image:
            text = image.info.get("parameters", "")
    elif suffix == "wav":
        with open(path, "rb") as f:
            text = wav_info(f.read())["comment"]
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
        raise ValueError(f"`file` must be a PNG, WAV or MP4 made by this app; got a .{suffix} file.")
    return parse_recipe(text)
