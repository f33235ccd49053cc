"""Reading an executor model's answer strictly, and comparing it with the trace (pure functions).

    from raylib.trace.answers import parse_answer, gold_answer, AnswerError
    answer = parse_answer("Line: 3\\nAnalysis: ...\\nCheck: {'x': 1}\\nNext statement: 4")
    answer == gold_answer(item)                  # exact: same line, same values, same next statement
    answer.key                                   # text that identical answers share (RVBS groups on it)

The rules (anything else raises AnswerError, and the prediction counts as wrong):
  - exactly one `Line:` (a line number), one `Check:` and one `Next statement:`, in that order, each at the start of
    a line; at most one `Analysis:` between Line and Check; nothing but whitespace after the Next statement line;
  - Check is one dict display with string keys, read with a bracket-aware scanner (a value holding `}` does not end
    it early, unlike a non-greedy regex); values that are Python literals compare as values of their exact types
    (1, 1.0 and True differ; a tuple is not a list; dict and set order does not matter); other values (deque([1]),
    <Node>) compare as text without whitespace;
  - Next statement is a line number, `completion` (any case), or an exception type name.
"""

from __future__ import annotations

import ast
import dataclasses
import re

__all__ = ["Answer", "AnswerError", "canonical_value", "gold_answer", "parse_answer"]

_FIELD = re.compile(r"^[ \t]*(Line|Analysis|Check|Next statement)[ \t]*:", re.MULTILINE)
_CLOSE = {"(": ")", "[": "]", "{": "}", "<": ">"}


class AnswerError(ValueError):
    """The text is not one well-formed answer; the message says which rule it broke."""


@dataclasses.dataclass(frozen=True)
class Answer:
    line: int
    values: tuple  # ((name, canonical value), ...) sorted by name
    next: int | str  # a line, "completion", or an exception type name

    @property
    def key(self) -> str:
        return repr((self.line, self.values, self.next))


def parse_answer(text: str) -> Answer:
    fields = [(m.group(1), m.start(), m.end()) for m in _FIELD.finditer(text)]
    names = [name for name, _, _ in fields]
    for name in ("Line", "Check", "Next statement"):
        if names.count(name) != 1:
            raise AnswerError(f"{names.count(name)} '{name}:' fields, expected exactly one")
    if names.count("Analysis") > 1:
        raise AnswerError("more than one 'Analysis:'")
    expected = ["Line", "Analysis", "Check", "Next statement"] if "Analysis" in names else [
        "Line", "Check", "Next statement"]
    if names != expected:
        raise AnswerError(f"fields in the order {names}, expected {expected}")
    spans = {name: (end, fields[i + 1][1] if i + 1 < len(fields) else len(text))
             for i, (name, _, end) in enumerate(fields)}
    line_text = text[slice(*spans["Line"])].strip()
    if not line_text.isdigit():
        raise AnswerError(f"Line is {line_text[:40]!r}, expected a line number")
    values = _values(text[slice(*spans["Check"])])
    next_text = text[slice(*spans["Next statement"])].strip()
    if next_text.isdigit():
        following: int | str = int(next_text)
    elif next_text.lower() == "completion":
        following = "completion"
    elif next_text.isidentifier():
        following = next_text
    else:
        raise AnswerError(f"Next statement is {next_text[:40]!r}, expected a line number, 'completion' or an "
                          "exception type")
    return Answer(int(line_text), values, following)


def gold_answer(item: dict) -> Answer:
    """The answer an item's trace gives (its Check values as the tracer rendered them)."""
    [[line, values]] = item["subsequent_values"]
    return Answer(line, tuple(sorted((name, canonical_value(text)) for name, text in values.items())),
                  item["next_line"])


def _values(text: str) -> tuple:
    body = text.strip()
    if not body.startswith("{"):
        raise AnswerError("Check is not a dict display")
    end = _matching(body, 0)
    if body[end + 1:].strip():
        raise AnswerError("text after the Check dict")
    values = {}
    for key_text, value_text in _entries(body[1:end]):
        try:
            key = ast.literal_eval(key_text)
        except (ValueError, SyntaxError):
            raise AnswerError(f"Check key {key_text[:40]!r} is not a string literal") from None
        if not isinstance(key, str):
            raise AnswerError(f"Check key {key_text[:40]!r} is not a string")
        if key in values:
            raise AnswerError(f"Check names {key!r} twice")
        values[key] = canonical_value(value_text)
    return tuple(sorted(values.items()))


def _skip_string(text: str, i: int) -> int:
    """Index just past the string literal that starts at text[i] (a quote, possibly tripled)."""
    quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
    j = i + len(quote)
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text.startswith(quote, j):
            return j + len(quote)
        j += 1
    raise AnswerError("an unterminated string in Check")


def _unquoted(text: str, start: int = 0):
    """(index, character) of each character of text[start:] outside string literals."""
    i = start
    while i < len(text):
        c = text[i]
        if c in "'\"":
            i = _skip_string(text, i)
            continue
        yield i, c
        i += 1


def _matching(text: str, start: int) -> int:
    """Index of the bracket closing the one at text[start]."""
    stack = []
    for i, c in _unquoted(text, start):
        if c in _CLOSE:
            stack.append(_CLOSE[c])
        elif c in ")]}>":
            if not stack or stack.pop() != c:
                raise AnswerError(f"unbalanced {c!r} in Check")
            if not stack:
                return i
    raise AnswerError("Check's dict is not closed")


def _top_level(text: str):
    """(index, character) of each character outside string literals and brackets."""
    depth = 0
    for i, c in _unquoted(text):
        if c in _CLOSE:
            depth += 1
        elif c in ")]}>":
            depth -= 1
        elif depth == 0:
            yield i, c


def _entries(body: str) -> list[tuple[str, str]]:
    """`'a': 1, 'b': [1, 2]` -> [("'a'", "1"), ("'b'", "[1, 2]")], splitting only at the top level."""
    cuts = [-1] + [i for i, c in _top_level(body) if c == ","] + [len(body)]
    pieces = [body[start + 1:end] for start, end in zip(cuts, cuts[1:])]
    if not pieces[-1].strip():
        pieces.pop()  # a trailing comma, or an empty dict
    entries = []
    for piece in pieces:
        colon = next((i for i, c in _top_level(piece) if c == ":"), None)
        if colon is None:
            raise AnswerError(f"Check entry {piece.strip()[:40]!r} is not 'name': value")
        entries.append((piece[:colon].strip(), piece[colon + 1:].strip()))
    return entries


def canonical_value(text: str):
    """A comparable form of one value's text: ("value", structure) for a literal, else ("text", without spaces)."""
    text = text.strip()
    if not text:
        raise AnswerError("an empty value in Check")
    try:
        return ("value", _structure(ast.literal_eval(text)))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        text = ast.unparse(ast.parse(text, mode="eval"))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        pass
    return ("text", re.sub(r"\s+", "", text))


def _structure(value):
    t = type(value)
    if t in (list, tuple):
        return (t.__name__, tuple(_structure(v) for v in value))
    if t in (set, frozenset):
        return (t.__name__, tuple(sorted(repr(_structure(v)) for v in value)))
    if t is dict:
        return ("dict", tuple(sorted((repr(_structure(k)), _structure(v)) for k, v in value.items())))
    if t is float:
        return ("float", repr(value))
    if t is complex:
        return ("complex", repr(value))
    return (t.__name__, value)
