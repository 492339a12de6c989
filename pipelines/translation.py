"""Translation with an LLM: generation with an instruction, streamed token by token like any text."""

from collections.abc import Iterator

from .base import Step, TextOutput
from .checks import InvalidInput, check_choice, check_text

MAX_TEXT_CHARS = 2000  # the text to translate
LANGUAGES = ("English", "French", "Spanish", "German", "Italian", "Portuguese", "Chinese")


class Translation:
    """Translate between LANGUAGES with the LLM behind `text` (a TextPipeline or a RemoteTextPipeline)."""

    languages = LANGUAGES

    def __init__(self, text):
        self.text = text

    @property
    def info(self) -> dict:
        return self.text.info

    @staticmethod
    def check_inputs(text, source_language, target_language) -> str:
        """The input text, stripped; InvalidInput naming the wrong argument."""
        text = check_text("text", text, MAX_TEXT_CHARS)
        check_choice("source_language", source_language, LANGUAGES)
        check_choice("target_language", target_language, LANGUAGES)
        if source_language == target_language:
            raise InvalidInput("target_language", "`source_language` and `target_language` are the same; pick two "
                                                  "different languages.")
        return text

    def stream(self, text: str, source_language: str, target_language: str,
               max_new_tokens: int = 256) -> Iterator[Step | TextOutput]:
        text = self.check_inputs(text, source_language, target_language)
        # A translation is about as long as its source: twice its tokens (+16) bounds it, so a one-line sentence
        # gets a one-line answer rather than max_new_tokens of rambling.
        max_new_tokens = min(max_new_tokens, 2 * self.text.count_tokens(text) + 16)
        prompt = (f"Translate this {source_language} text into {target_language}. "
                  f"Reply with the {target_language} translation only.\n\n{text}")
        return self.text.stream(prompt, system_prompt="You are a professional translator.",
                                max_new_tokens=max_new_tokens, temperature=0.0, top_p=1.0, repetition_penalty=1.1)
