"""Procedural (prompt, description) pairs: the data the bundled text-diffusion model learns from.

The prompt is an image prompt in the image model's words (training/shapes.py), parts left out at
random; the description is one or two English sentences that say the same thing in other words,
in one of the FORMS below (24 sentence forms, each with several phrasings of the position and the
background), so the model learns to write language rather than fill one template:

    "a small red circle on the left on a blue background"
    -> "The picture shows a small red circle near the left edge, set on a blue background."
    -> "A blue background fills the frame. On it, a little red circle sits on the left side."

A description names exactly what the prompt names: nothing is invented for the parts left out.

    python training/descriptions.py     # prints a few pairs
"""

import random
import re

from shapes import COLOURS, POSITIONS, SHAPES, SIZES, Scene, random_scene

SPECIAL = ["[PAD]", "[MASK]", "[EOS]", "[SEP]", "[UNK]"]  # the tokenizer's special tokens, ids 0-4
SIZE_WORDS = {"small": ("small", "little", "small"), "large": ("large", "big", "large")}
# Where the shape is, said several ways; the position's own word is always in the phrase (tests read it).
PLACE = {
    "left": ("on the left", "near the left edge", "on the left side", "over on the left"),
    "right": ("on the right", "near the right edge", "on the right side", "over on the right"),
    "top": ("at the top", "near the top edge", "at the top of the frame", "up at the top"),
    "bottom": ("at the bottom", "near the bottom edge", "at the bottom of the frame", "down at the bottom"),
    "center": ("in the center", "right in the center", "in the center of the frame", "in the very center"),
}
ON_BG = ("on {a_bg} background", "set on {a_bg} background", "against {a_bg} background", "over {a_bg} background")

# Each form is a list of sentences; a sentence is kept only if the prompt named every slot it uses
# ({obj} is always named). {Obj} is {obj} with a capital. {where} and {on_bg} are phrases; {bg} the colour.
FORMS = [
    ["The picture shows {obj}{ where}{, on_bg}."],
    ["This picture shows {obj}{ where}{ on_bg}."],
    ["In this picture there is {obj}{ where}{ on_bg}."],
    ["We see {obj}{ where}{, on_bg}."],
    ["There is {obj}{ where}{ on_bg}."],
    ["It is a picture of {obj}{ where}{ on_bg}."],
    ["The image has {obj}{ where}{ on_bg}."],
    ["Here you can see {obj}{ where}{ on_bg}."],
    ["{Obj} is drawn{ where}{ on_bg}."],
    ["{Obj} sits{ where}{ on_bg}."],
    ["{Obj} appears{ where}{ on_bg}."],
    ["The only shape is {obj}{ where}{, on_bg}."],
    ["The picture shows {obj}.", "It is {where}.", "The background is {bg}."],
    ["{Obj} is drawn{ where}.", "The background is {bg}."],
    ["The background is {bg}.", "On it, {obj} sits{ where}."],
    ["{A_bg} background fills the frame.", "On it, {obj} is drawn{ where}."],
    ["Everything behind the shape is {bg}.", "The shape is {obj}{ where}."],
    ["You can see {obj}.", "It sits {where}{ on_bg}."],
    ["The picture is simple.", "It shows {obj}{ where}{ on_bg}."],
    ["One shape is drawn: {obj}{ where}.", "The background is {bg}."],
    ["Look {where} and you see {obj}.", "The background is {bg}."],
    ["{Where}, there is {obj}{ on_bg}."],
    ["The shape in this picture is {obj}.", "It is {where}{, on_bg}."],
    ["This is {obj}{ where}.", "Behind it the background is {bg}."],
]
SLOTS = re.compile(r"\{([ ,]*)(\w+)\}")


def article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def prompt_parts(scene: Scene, rng: random.Random, drop: float = 0.3) -> dict:
    """Which parts the prompt names (the shape always; each other part kept with probability 1 - drop)."""
    parts = {"shape": scene.shape}
    for name in ("size", "colour", "position", "background"):
        if rng.random() >= drop:
            parts[name] = getattr(scene, name)
    return parts


def prompt_text(parts: dict, rng: random.Random) -> str:
    """The image prompt for these parts, as the image model's captions are written (a little reordered)."""
    obj = " ".join(parts[k] for k in ("size", "colour", "shape") if k in parts)
    tail = []
    if "position" in parts:
        tail.append(POSITIONS[parts["position"]][0])
    if "background" in parts:
        bg = parts["background"]  # the image model's captions say "a orange"; people write "an orange"
        tail.append(f"on {article(bg) if rng.random() < 0.7 else 'a ' + bg} background")
    if len(tail) == 2 and rng.random() < 0.2:
        tail.reverse()
    return " ".join([article(obj)] + tail)


def names_all(parts: dict, text: str) -> bool:
    """Does `text` name every part of the prompt: colour, shape, size, position, background colour?"""
    found = set(words(text.lower()))
    checks = [parts["shape"] in found, parts.get("colour", "shape") in found or "colour" not in parts,
              "size" not in parts or bool(found & set(SIZE_WORDS[parts["size"]])),
              "position" not in parts or parts["position"] in found,
              "background" not in parts or (parts["background"] in found and "background" in found)]
    return all(checks)


def describe(parts: dict, rng: random.Random, max_words: int = 64) -> str:
    """One or two sentences, at most `max_words` tokens, that say everything the prompt names, in a
    random form and phrasing (forms whose kept sentences would leave a part out are passed over)."""
    for form in rng.sample(FORMS, len(FORMS)):
        text = render_form(form, parts, rng)
        if names_all(parts, text) and len(words(text)) <= max_words:
            return text
    raise ValueError(f"no form says {parts} in {max_words} words")


def render_form(form: list[str], parts: dict, rng: random.Random) -> str:
    """The sentences of `form` whose slots the prompt fills, with random phrasings."""
    size = rng.choice(SIZE_WORDS[parts["size"]]) if "size" in parts else None
    obj = article(" ".join(w for w in (size, parts.get("colour"), parts["shape"]) if w))
    where = rng.choice(PLACE[parts["position"]]) if "position" in parts else None
    bg = parts.get("background")
    values = {"obj": obj, "Obj": obj[0].upper() + obj[1:], "where": where, "Where": where and where[0].upper() + where[1:],
              "bg": bg, "A_bg": bg and article(bg).capitalize(),
              "on_bg": rng.choice(ON_BG).format(a_bg=article(bg)) if bg else None}
    sentences = []
    for sentence in form:
        needed = [name for lead, name in SLOTS.findall(sentence) if not lead]  # bare slots must be named
        if any(values[name] is None for name in needed):
            continue
        sentences.append(SLOTS.sub(lambda m: m.group(1) + values[m.group(2)] if values[m.group(2)] else "", sentence))
    if not sentences:  # every sentence of this form needed a part the prompt left out
        sentences = [f"The picture shows {obj}."]
    return " ".join(sentences)


def words(text: str) -> list[str]:
    """The bundled tokenizer's split: words and the punctuation marks , . : apart."""
    return re.findall(r"\w+|[,.:]", text)


def sample(rng: random.Random, max_words: int = 64) -> tuple[str, str]:
    """One (prompt, description) pair, the description at most `max_words` tokens long."""
    parts = prompt_parts(random_scene(rng), rng)
    return prompt_text(parts, rng), describe(parts, rng, max_words)


def vocabulary() -> list[str]:
    """Every word a prompt or a description can contain (prompts are lower-cased), plus the specials."""
    found = set()
    for form in FORMS:
        for sentence in form:
            found.update(words(SLOTS.sub(" ", sentence)))
    for phrases in list(PLACE.values()) + [ON_BG]:
        for phrase in phrases:
            found.update(words(phrase.replace("{a_bg}", "")))
    found.update(COLOURS, SHAPES, SIZES, POSITIONS, (w for ws in SIZE_WORDS.values() for w in ws))
    found.update(w for p, _ in POSITIONS.values() for w in p.split())
    found.update({"a", "an", "A", "An", "on", "background", "centre", "middle"})
    found.update(w.lower() for w in list(found))
    return SPECIAL + sorted(found)


if __name__ == "__main__":
    rng = random.Random(0)
    for _ in range(12):
        prompt, description = sample(rng)
        print(f"{prompt!r:70} -> {description}")
    print(len(vocabulary()), "tokens;", len(FORMS), "sentence forms")
