"""Input checks shared by every pipeline: each raises `InvalidInput(field, message)` naming the argument.

The UI marks `exc.field` as the invalid input and shows `str(exc)`; an API client gets the same message. Checks
never clamp or round: a value out of range is refused, with the range it should be in.
"""

import math
from typing import Any

MAX_PROMPT_CHARS = 500  # a diffusion model's prompt (image, audio, video, text diffusion)


class InvalidInput(ValueError):
    """Bad input for the argument `field` (its API name); the message says what is wrong and what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_text(name: str, value: Any, max_chars: int, optional: bool = False) -> str:
    """A non-empty string of at most `max_chars` characters, stripped; else InvalidInput naming it.

    `optional`: None or blank is fine too (a negative prompt), and comes back as "".
    """
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if not isinstance(value, str):
        raise InvalidInput(name, f"`{name}` must be text; got {type(value).__name__}.")
    if not value.strip():
        raise InvalidInput(name, f"Type something in `{name}` first: it is empty.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") cannot reach a tokenizer
        raise InvalidInput(name, f"`{name}` holds a character that is not valid Unicode text at position {exc.start}.") from None
    if len(value) > max_chars:
        raise InvalidInput(name, f"`{name}` is {len(value)} characters long; the limit is {max_chars}.")
    return value.strip()


def check_range(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    """`low <= value <= high` (and a whole number if `integer`); else InvalidInput naming it."""
    kind = "a whole number" if integer else "a number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer and float(value) != int(value):
        ok = False
    if not ok or not low <= value <= high:
        shown = repr(value) if isinstance(value, (int, float, str, type(None))) else type(value).__name__
        raise InvalidInput(name, f"`{name}` must be {kind} between {low} and {high}; got {shown:.60}.")


def check_multiple(name: str, value: int, multiple: int) -> None:
    """`value` is a multiple of `multiple` (image sizes, canvas lengths)."""
    if int(value) % multiple:
        raise InvalidInput(name, f"`{name}` must be a multiple of {multiple}; got {value}.")


def check_seed(seed: Any) -> int:
    """Seeds are whole numbers in [0, 2**32 - 1] (what torch.Generator and numpy both accept)."""
    check_range("seed", seed, 0, 2**32 - 1, integer=True)
    return int(seed)


def check_choice(name: str, value: Any, choices) -> None:
    """`value` is one of `choices`; else InvalidInput listing them."""
    if not isinstance(value, (str, int, float)) or value not in choices:
        shown = repr(value) if isinstance(value, (int, float, str, type(None))) else type(value).__name__
        raise InvalidInput(name, f"Unknown `{name}` {shown:.60}; valid: {', '.join(map(str, choices))}.")
