"""Procedural, captioned 64x64 shape images: the data the bundled image and video models learn from.

Every image is one flat-coloured shape on a flat background, drawn with anti-aliasing. The caption
says what is drawn, in the words of `VOCABULARY`; parts of it are left out at random (the unnamed
attribute is then random too), so the model learns each word on its own and in any combination:

    "a small red circle on the left on a blue background"
    "a green square"
    "a large triangle at the top"
"""

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64  # image side, in pixels

COLOURS = {  # name -> RGB; far apart so that a pixel's nearest colour names it
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "orange": (245, 140, 20),
    "purple": (140, 40, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 9, "large": 17}  # half the shape's extent, in pixels
POSITIONS = {  # name -> the phrase used in captions and the shape's centre
    "left": ("on the left", (16, 32)),
    "right": ("on the right", (48, 32)),
    "top": ("at the top", (32, 16)),
    "bottom": ("at the bottom", (32, 48)),
    "center": ("in the center", (32, 32)),
}
# Every word a caption may contain: the bundled model knows these and nothing else.
VOCABULARY = sorted(
    set(COLOURS) | set(SHAPES) | set(SIZES) | set(POSITIONS) | {"centre", "middle"}
    | {"a", "an", "the", "on", "at", "in", "background"}
)


@dataclass
class Scene:
    colour: str
    shape: str
    size: str
    position: str
    background: str

    def caption(self, rng: random.Random | None = None, drop: float = 0.0) -> str:
        """The caption; with `rng`, each optional part is left out with probability `drop`."""
        keep = (lambda: True) if rng is None else (lambda: rng.random() >= drop)
        words = ["a"]
        if keep():
            words.append(self.size)
        if keep():
            words.append(self.colour)
        words.append(self.shape)
        if keep():
            words.append(POSITIONS[self.position][0])
        if keep():
            words.append(f"on a {self.background} background")
        return " ".join(words)


def random_scene(rng: random.Random) -> Scene:
    colour = rng.choice(list(COLOURS))
    background = rng.choice([c for c in COLOURS if c != colour])
    return Scene(colour, rng.choice(SHAPES), rng.choice(list(SIZES)), rng.choice(list(POSITIONS)), background)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill, scale: int = 1) -> None:
    """Draw one shape centred on (cx, cy) with half-extent r, on a canvas `scale` times larger."""
    cx, cy, r = cx * scale, cy * scale, r * scale
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        s = r * 0.85  # a square of the same extent looks bigger than a circle: shrink it a little
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:  # triangle, pointing up
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fill)


def render(scene: Scene, jitter: tuple[float, float] = (0.0, 0.0), radius_scale: float = 1.0) -> Image.Image:
    """Render a scene (4x supersampled, so edges are anti-aliased)."""
    scale = 4
    img = Image.new("RGB", (SIZE * scale, SIZE * scale), COLOURS[scene.background])
    cx, cy = POSITIONS[scene.position][1]
    r = SIZES[scene.size] * radius_scale
    draw_shape(ImageDraw.Draw(img), scene.shape, cx + jitter[0], cy + jitter[1], r, COLOURS[scene.colour], scale)
    return img.resize((SIZE, SIZE), Image.LANCZOS)


def sample(rng: random.Random) -> tuple[np.ndarray, Scene]:
    """One training image (HxWx3 uint8, the shape jittered a little) and the scene it shows."""
    scene = random_scene(rng)
    jitter = (rng.uniform(-3, 3), rng.uniform(-3, 3))
    img = render(scene, jitter, rng.uniform(0.9, 1.1))
    return np.asarray(img), scene


def shape_scores(mask: np.ndarray) -> dict[str, float]:
    """IoU of an object mask with each shape drawn to fill the mask's bounding box.

    Matching whole templates, rather than a fill ratio alone, tells a square with softened corners
    from a circle, and a triangle (narrow top, wide base) from both.
    """
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = mask[y0:y1, x0:x1]
    h, w = box.shape
    yy, xx = np.mgrid[0:h, 0:w]
    u, v = (xx + 0.5) / w, (yy + 0.5) / h  # pixel centres in [0, 1]
    templates = {
        "square": np.ones_like(box, dtype=bool),
        "circle": (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25,
        "triangle": np.abs(u - 0.5) <= 0.5 * v,  # apex at the top centre, base along the bottom
    }
    return {name: float((t & box).sum() / max((t | box).sum(), 1)) for name, t in templates.items()}


def nearest_colour(rgb) -> str:
    """The palette name closest to an RGB triple."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return min(COLOURS, key=lambda name: float(np.sum((rgb - np.asarray(COLOURS[name], np.float32)) ** 2)))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask (drops specks and halo pixels)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    best, best_size, current = 0, 0, 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        current += 1
        labels[start] = current
        todo, size = [start], 0
        while todo:
            y, x = todo.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    todo.append((ny, nx))
        if size > best_size:
            best, best_size = current, size
    return labels == best if best else mask


def describe(image) -> dict:
    """Read a scene back from an image (the inverse of `render`), for measuring what a model drew.

    background: the palette colour of the border pixels; the object: the largest region of pixels far
    from that colour. Returns background, colour, shape (the best-matching template), size, position
    (the nearest named centre to the object's centroid) and the raw measurements. colour/shape/... are
    None when no object is found.
    """
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float32)
    border = np.concatenate([arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3), arr[:, :2].reshape(-1, 3),
                             arr[:, -2:].reshape(-1, 3)])
    background = nearest_colour(np.median(border, axis=0))
    distance = np.sqrt(((arr - np.asarray(COLOURS[background], np.float32)) ** 2).sum(-1))
    mask = largest_component(distance > 50)  # orange and yellow, the closest pair, are 80 apart
    out = {"background": background, "colour": None, "shape": None, "size": None, "position": None,
           "area": int(mask.sum()), "fill": None, "centre": None}
    if mask.sum() < 12:
        return out
    ys, xs = np.nonzero(mask)
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = mask.sum() / float(height * width)
    cx, cy = xs.mean(), ys.mean()
    scores = shape_scores(mask)
    out.update(
        colour=nearest_colour(np.median(arr[mask], axis=0)),
        shape=max(scores, key=scores.get),
        size="large" if max(height, width) > (SIZES["small"] + SIZES["large"]) else "small",
        position=min(POSITIONS, key=lambda p: (POSITIONS[p][1][0] - cx) ** 2 + (POSITIONS[p][1][1] - cy) ** 2),
        fill=round(float(fill), 3), centre=(round(float(cx), 1), round(float(cy), 1)),
    )
    return out


if __name__ == "__main__":  # write a contact sheet to look at: python training/shapes.py /tmp/sheet.png
    import sys

    rng = random.Random(0)
    sheet = Image.new("RGB", (SIZE * 8, SIZE * 4))
    for i in range(32):
        arr, scene = sample(rng)
        print(i, scene.caption(rng, drop=0.25))
        sheet.paste(Image.fromarray(arr), ((i % 8) * SIZE, (i // 8) * SIZE))
    sheet.resize((SIZE * 16, SIZE * 8), Image.NEAREST).save(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sheet.png")
