"""Character sets and vocabularies of text CAPTCHAs: ``a-z0-9`` -> indices (0 is the CTC blank), case rules."""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger("recaptcha_tf")

DEFAULT_CHARSET = "a-z0-9"

CASE_MODES = ("keep", "lower", "upper")


class OutOfVocabularyError(ValueError):
    """A label holds characters the vocabulary does not know.

    Attributes:
        source: the file (or ``parquet:file#row``) the label came from.
        label: the offending label.
        characters: the unknown characters, in order of first appearance.
        vocabulary: the known characters.
    """

    def __init__(self, source: str, label: str, characters: str, vocabulary: str, extra: str = ""):
        self.source = source
        self.label = label
        self.characters = characters
        self.vocabulary = vocabulary
        where = f"{source}: label" if source else "Label"
        super().__init__(
            f"{where} {label!r} has character(s) {characters!r} that are not in the vocabulary "
            f"{vocabulary!r}.{extra} Use a charset that covers them, or change the case "
            "handling (case='lower'/'upper')."
        )


def _char_class(char: str) -> str:
    if char.isdigit():
        return "digit"
    if char.islower():
        return "lower"
    if char.isupper():
        return "upper"
    return "other"


def expand_charset(spec: str) -> str:
    """Expand a charset spec into its characters, without duplicates.

    ``"a-z0-9"`` -> ``"abc...xyz0123456789"``; ``"A-Za-z0-9"`` -> 62 characters;
    a literal string such as ``"2345678bcdefgmnpwxy"`` is kept as is. ``x-y`` is
    a range only when ``x`` and ``y`` are both alphanumeric; any other ``-`` is a
    literal character (put it first or last: ``"-a-z"``).

    Raises:
        ValueError: an empty spec, a reversed range (``"z-a"``) or a range
            across character classes (``"0-z"``, which would pull in punctuation).
    """
    if not spec:
        raise ValueError("The charset is empty; give characters or ranges such as 'a-z0-9'.")
    chars: list[str] = []
    i = 0
    while i < len(spec):
        first = spec[i]
        if i + 2 < len(spec) and spec[i + 1] == "-" and first.isalnum() and spec[i + 2].isalnum():
            last = spec[i + 2]
            if first > last:
                raise ValueError(f"Reversed range {first}-{last} in charset {spec!r}; write {last}-{first}.")
            if _char_class(first) != _char_class(last):
                raise ValueError(
                    f"Range {first}-{last} in charset {spec!r} mixes digits/lower/upper case and would "
                    "include punctuation; write the ranges separately, e.g. 'a-z0-9'."
                )
            chars.extend(chr(c) for c in range(ord(first), ord(last) + 1))
            i += 3
        else:
            chars.append(first)
            i += 1
    return "".join(dict.fromkeys(chars))


class Vocabulary:
    """Characters of a text CAPTCHA task and their integer codes.

    Character ``characters[i]`` has code ``i + 1``; code 0 is the CTC blank and
    the padding value, so it never stands for a character.

    Args:
        characters: the known characters, each once (``"abc...z0...9"``).
    """

    def __init__(self, characters: str):
        if not characters:
            raise ValueError("A vocabulary needs at least one character.")
        repeated = sorted({c for c in characters if characters.count(c) > 1})
        if repeated:
            raise ValueError(f"Vocabulary characters must be unique; repeated: {''.join(repeated)!r}.")
        self.characters = str(characters)
        self._index = {c: i + 1 for i, c in enumerate(self.characters)}

    @property
    def size(self) -> int:
        """Number of characters (the blank not included)."""
        return len(self.characters)

    def __len__(self) -> int:
        return self.size

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and other.characters == self.characters

    def __hash__(self) -> int:
        return hash(self.characters)

    def __repr__(self) -> str:
        return f"Vocabulary({self.characters!r})"

    def unknown_characters(self, label: str) -> str:
        """Characters of ``label`` not in the vocabulary, each once, in order."""
        return "".join(dict.fromkeys(c for c in label if c not in self._index))

    def encode(self, label: str, source: str = "") -> list[int]:
        """``label`` -> list of codes in ``[1, size]``.

        Raises:
            OutOfVocabularyError: naming ``source`` and the unknown characters.
        """
        unknown = self.unknown_characters(label)
        if unknown:
            raise OutOfVocabularyError(source, label, unknown, self.characters)
        return [self._index[c] for c in label]

    def decode(self, indices: Iterable) -> str:
        """Codes -> string. 0 (blank/padding), negatives and codes above ``size`` are dropped.

        Repeated codes are kept: collapsing CTC repeats is the decoder's job.
        """
        out = []
        for value in indices:
            code = int(value)
            if 1 <= code <= self.size:
                out.append(self.characters[code - 1])
        return "".join(out)

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> Vocabulary:
        """The sorted unique characters of ``labels``."""
        characters = sorted(set("".join(labels)))
        if not characters:
            raise ValueError("Cannot build a vocabulary from empty labels.")
        return cls("".join(characters))

    def to_config(self) -> dict:
        """JSON-serialisable description; :meth:`from_config` rebuilds the vocabulary."""
        return {"characters": self.characters}

    @classmethod
    def from_config(cls, config: dict) -> Vocabulary:
        return cls(config["characters"])


def apply_case(label: str, case: str = "keep") -> str:
    """``case``: ``"keep"``, ``"lower"`` or ``"upper"``."""
    if case == "keep":
        return label
    if case == "lower":
        return label.lower()
    if case == "upper":
        return label.upper()
    raise ValueError(f"case must be one of {CASE_MODES}, got {case!r}.")
