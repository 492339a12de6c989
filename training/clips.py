"""Procedural, captioned clips of one moving shape: the data the bundled video model learns from.

Each clip is `NUM_FRAMES` 64x64 frames of one flat-coloured shape (the image model's colours and
shapes, drawn by `shapes.draw_shape`) on a flat background, doing one motion from `MOTIONS`:

    "a small red circle moving left on a blue background"
    "a yellow square moving up"
    "a large green triangle shrinking on a black background"

Parts of a caption (size, colour, background) are left out at random, as for the image model.
"""

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from shapes import COLOURS, SHAPES, SIZE, SIZES, draw_shape, nearest_colour

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, as the training scripts do
from pipelines.video import frame_token  # noqa: E402  (the token format the app loads)

NUM_FRAMES = 8
TRAVEL = 26  # pixels a moving shape's centre travels from the first frame to the last, across the middle
MOTIONS = {  # caption phrase -> direction of travel (dx, dy), or None for a change of size
    "moving left": (-1, 0),
    "moving right": (1, 0),
    "moving up": (0, -1),
    "moving down": (0, 1),
    "growing": None,
    "shrinking": None,
}
GROW = (5.0, 19.0)  # half-extent at the start and end of "growing" (reversed for "shrinking")
# What each motion phrase means in its first and last frame, in the image model's words: its frame
# embeddings start as a blend of the two (frame k: k/7 of the way), and learn from there.
FRAME_INIT = {"moving left": ("right", "left"), "moving right": ("left", "right"), "moving up": ("bottom", "top"),
              "moving down": ("top", "bottom"), "growing": ("small", "large"), "shrinking": ("large", "small")}


# Each motion phrase has one learnt embedding per frame, token `frame_token(phrase, k)` ("moving left@3"
# a format pipelines/video.py defines, since it loads them): a frame's text then says what the phrase
# means at that moment of the clip ("moving left": on the right in the first frame, in the middle
# halfway, on the left in the last), which the image model's spatial layers already know how to draw;
# the "left" of "moving left" is not the image model's "left" (a place). The app's pipeline swaps them
# in frame by frame (`pipelines/video.py:frame_prompts`).
FRAME_TOKENS = [frame_token(phrase, k) for phrase in MOTIONS for k in range(NUM_FRAMES)]


@dataclass
class Clip:
    colour: str
    shape: str
    size: str  # ignored by "growing" / "shrinking"
    motion: str
    background: str

    def frame_captions(self, caption: str) -> list[str]:
        """`caption` once per frame, its motion phrase replaced by that frame's token (see `frame_token`)."""
        return [caption.replace(self.motion, frame_token(self.motion, k)) for k in range(NUM_FRAMES)]

    def caption(self, rng: random.Random | None = None, drop: float = 0.0) -> str:
        """The caption; with `rng`, size, colour and background are each left out with probability `drop`."""
        keep = (lambda: True) if rng is None else (lambda: rng.random() >= drop)
        words = ["a"]
        if MOTIONS[self.motion] is not None and keep():
            words.append(self.size)
        if keep():
            words.append(self.colour)
        words += [self.shape, self.motion]
        if keep():
            words.append(f"on a {self.background} background")
        return " ".join(words)


def random_clip(rng: random.Random) -> Clip:
    colour = rng.choice(list(COLOURS))
    background = rng.choice([c for c in COLOURS if c != colour])
    return Clip(colour, rng.choice(SHAPES), rng.choice(list(SIZES)), rng.choice(list(MOTIONS)), background)


def path(clip: Clip, rng: random.Random) -> list[tuple[float, float, float]]:
    """(cx, cy, r) for every frame: a straight line at constant speed, or a steady change of size."""
    direction = MOTIONS[clip.motion]
    if direction is None:
        r0, r1 = GROW if clip.motion == "growing" else GROW[::-1]
        cx, cy = 32 + rng.uniform(-6, 6), 32 + rng.uniform(-6, 6)
        return [(cx, cy, r0 + (r1 - r0) * t / (NUM_FRAMES - 1)) for t in range(NUM_FRAMES)]
    dx, dy = direction
    r = SIZES[clip.size] * rng.uniform(0.9, 1.1)
    across = rng.uniform(16, 48)  # the coordinate that does not change
    start = 32 - TRAVEL / 2 + rng.uniform(-4, 4)  # along the motion, measured in its direction
    points = []
    for t in range(NUM_FRAMES):
        along = start + TRAVEL * t / (NUM_FRAMES - 1)
        x = (along if dx > 0 else SIZE - along) if dx else across
        y = (along if dy > 0 else SIZE - along) if dy else across
        points.append((x, y, r))
    return points


def render_clip(clip: Clip, rng: random.Random) -> np.ndarray:
    """The clip's frames as a F x H x W x 3 uint8 array (each frame 4x supersampled, so edges are smooth)."""
    scale, frames = 4, []
    for cx, cy, r in path(clip, rng):
        img = Image.new("RGB", (SIZE * scale, SIZE * scale), COLOURS[clip.background])
        draw_shape(ImageDraw.Draw(img), clip.shape, cx, cy, r, COLOURS[clip.colour], scale)
        frames.append(np.asarray(img.resize((SIZE, SIZE), Image.LANCZOS)))
    return np.stack(frames)


def sample(rng: random.Random) -> tuple[np.ndarray, Clip]:
    clip = random_clip(rng)
    return render_clip(clip, rng), clip


def track(frames) -> list[dict]:
    """Where the object is in each frame: its colour, centre (x, y) and area in pixels, or None if not found.

    The background is the palette colour of the first frame's border; the object is every pixel far
    from it (a mean over all of them is robust to the specks a tiny model leaves).
    """
    arrays = [np.asarray(f.convert("RGB") if isinstance(f, Image.Image) else f, dtype=np.float32) for f in frames]
    first = arrays[0]
    border = np.concatenate([first[:2].reshape(-1, 3), first[-2:].reshape(-1, 3), first[:, :2].reshape(-1, 3),
                             first[:, -2:].reshape(-1, 3)])
    background = np.asarray(COLOURS[nearest_colour(np.median(border, axis=0))], np.float32)
    out = []
    for arr in arrays:
        mask = np.sqrt(((arr - background) ** 2).sum(-1)) > 50
        if mask.sum() < 8:
            out.append(None)
            continue
        ys, xs = np.nonzero(mask)
        out.append({"colour": nearest_colour(np.median(arr[mask], axis=0)), "centre": (float(xs.mean()), float(ys.mean())),
                    "area": int(mask.sum())})
    return out


def motion_of(frames) -> str | None:
    """Read the motion back from a clip: the phrase of `MOTIONS` that best explains first -> last frame."""
    seen = track(frames)
    if seen[0] is None or seen[-1] is None:
        return None
    (x0, y0), (x1, y1) = seen[0]["centre"], seen[-1]["centre"]
    dx, dy, growth = x1 - x0, y1 - y0, seen[-1]["area"] / max(seen[0]["area"], 1)
    if max(abs(dx), abs(dy)) < 6:  # the centre stayed put: a change of size, or nothing
        return "growing" if growth > 1.5 else "shrinking" if growth < 1 / 1.5 else None
    if abs(dx) > abs(dy):
        return "moving right" if dx > 0 else "moving left"
    return "moving down" if dy > 0 else "moving up"


if __name__ == "__main__":  # a contact sheet, one clip per row: python training/clips.py /tmp/clips.png
    rng = random.Random(0)
    sheet = Image.new("RGB", (SIZE * NUM_FRAMES, SIZE * 8))
    for row in range(8):
        frames, clip = sample(rng)
        print(row, clip.caption(rng, drop=0.25), "| read back:", motion_of(frames))
        for t, frame in enumerate(frames):
            sheet.paste(Image.fromarray(frame), (t * SIZE, row * SIZE))
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(sys.argv[1] if len(sys.argv) > 1 else "/tmp/clips.png")
