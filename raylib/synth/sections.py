"""Reading a model's answer into named parts. Every reader returns what it found or says why it found nothing, so a
dropped answer is counted under a reason.

    from raylib.synth.sections import header_sections, marked_sections, strip_fence, yes_or_no
    header_sections("[INSTRUCTION]\\nSort a list.\\n[CRITERIA]\\nFast.", ["INSTRUCTION", "CRITERIA"])
        # ({"INSTRUCTION": "Sort a list.", "CRITERIA": "Fast."}, "")
    marked_sections("-- BEGIN [REFLECTION] --\\nFine.\\n-- END [REFLECTION] --", ["REFLECTION"])   # ({...}, [])
    yes_or_no("[YES] It fixes a bug.")        # True; "[NO] ..." -> False; undecided -> None
    strip_fence("```python\\nx = 1\\n```")     # "x = 1"

Header sections (Commit-Instruct): a header is a line that starts with the section's name in brackets or markdown
("[NAIVE_CODE]", "**Naive Code:**", "## 2. Naive code", "1. *Naive Code (Python)*"); text after it on the same
line needs a colon ("[CRITERIA]: Fast." is a header, "[IMPROVED_CODE] is faster." a mention); never inside a code
fence. The sections are taken in the order asked for, each from the first header after the previous one, lines that
hold only the header first: a header-like line inside a section ("Improved code: sorts in place" in the feedback)
stays text. Marked sections (Critic-Evol): text between "-- BEGIN [NAME] --" and "-- END [NAME] --" lines.
Windows line endings are read as plain ones.
"""

from __future__ import annotations

import re
import textwrap

__all__ = ["header_sections", "marked_sections", "strip_fence", "yes_or_no"]

# an opening fence on its own line (``` or ~~~, 3 or more, any indent, an info string), up to the same fence
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[^\n`]*\n(?P<code>.*?)\n?^[ \t]*(?P=fence)[ \t]*$",
                    re.DOTALL | re.MULTILINE)
_OPEN_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _header_pattern(name: str) -> re.Pattern:
    """A line that is the header of `name` ("NAIVE_CODE": "[NAIVE_CODE]", "**Naive code:**", "## 2. NAIVE CODE",
    "Naive Code (Python):", ...): named groups mark how it is set off ("open" bracket, "hash" heading, "emph"
    emphasis, "colon") and "rest" is the text after it."""
    words = r"[\s_-]*".join(re.escape(w) for w in re.split(r"[\s_-]+", name) if w)
    return re.compile(r"^\s*(?P<hash>#+\s*)?(?:\d+[.)]\s*)?(?P<emph>[*_]{1,2})?\s*(?P<open>\[)?\s*[*_]*" + words
                      + r"(?![A-Za-z0-9])\s*(?:\([^)\n]*\))?[*_]*\s*\]?[*_]*\s*(?P<colon>:)?[\s*_]*(?P<rest>.*)$",
                      re.IGNORECASE)


def _headers(text: str, names: list[str]) -> list[tuple[int, str, bool, str]]:
    """Every header line outside code fences: (line index, section name, whether the line is only the header, the
    text after it)."""
    patterns = {name: _header_pattern(name) for name in names}
    found, fence = [], None
    for index, line in enumerate(text.split("\n")):
        opening = _OPEN_FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence) \
                    and not line.strip()[len(opening.group(1)):].strip():
                fence = None  # the closing fence
            continue
        if opening and line.strip().count(opening.group(1)[0] * 3) == 1:  # "```sorted``` is..." opens nothing
            fence = opening.group(1)
            continue
        for name, pattern in patterns.items():
            m = pattern.match(line)
            if m is None or not (m.group("open") or m.group("hash") or m.group("emph") or m.group("colon")):
                continue
            rest = m.group("rest").strip()
            if rest and not m.group("colon"):  # "[IMPROVED_CODE] handles ...": a mention in running text
                continue
            found.append((index, name, not rest, rest))
            break
    return found


def _in_order(headers: list[tuple[int, str, bool, str]], names: list[str]) -> list[tuple[int, str, bool, str]]:
    """The header of each of `names` in turn, each the first after the previous one; stops at the first missing."""
    chosen, after = [], -1
    for name in names:
        header = next((h for h in headers if h[1] == name and h[0] > after), None)
        if header is None:
            break
        chosen.append(header)
        after = header[0]
    return chosen


def header_sections(text: str, names: list[str]) -> tuple[dict[str, str], str]:
    """({name: its text}, "") when every one of `names` has a header, in that order, with non-empty text; else
    ({}, the reason: "missing section X" (or out of order), "section X is empty")."""
    lines = _lines(text).split("\n")
    headers = _headers("\n".join(lines), names)
    chosen = _in_order([h for h in headers if h[2]], names)  # lines that are only a header, first
    if len(chosen) < len(names):
        chosen = max(chosen, _in_order(headers, names), key=len)
    if len(chosen) < len(names):
        return {}, f"missing section {names[len(chosen)]} (or out of order)"
    sections = {}
    for k, (index, name, _, rest) in enumerate(chosen):
        end = chosen[k + 1][0] if k + 1 < len(chosen) else len(lines)
        body = "\n".join(([rest] if rest else []) + lines[index + 1:end]).strip()
        if not body:
            return {}, f"section {name} is empty"
        sections[name] = body
    return sections, ""


def marked_sections(text: str, names: list[str], after: str | None = None) -> tuple[dict[str, str], list[str]]:
    """({name: text} of the `names` found between "-- BEGIN [NAME] --" and "-- END [NAME] --", each stripped and
    non-empty; the first such block of each), and the names missing or empty. `after`: read only what follows the
    last "-- BEGIN [AFTER] --" (an answer that repeats an example before its own part is read from its own part)."""
    text = _lines(text)
    if after:
        starts = [m.start() for m in re.finditer(r"--\s*BEGIN\s*\[" + re.escape(after) + r"\]\s*--", text)]
        text = text[starts[-1]:] if starts else text
    found, missing = {}, []
    for name in names:
        block = re.search(r"--\s*BEGIN\s*\[" + re.escape(name) + r"\]\s*--[^\n]*\n(.*?)--\s*END\s*\["
                          + re.escape(name) + r"\]\s*--", text, re.DOTALL)
        body = block.group(1).strip() if block else ""
        if body:
            found[name] = body
        else:
            missing.append(name)
    return found, missing


def strip_fence(text: str) -> str:
    """The code of a section: the contents of its first fenced block (``` or ~~~, closed by the same fence on a line
    of its own; an indented block is dedented), or the text itself when it has none (a lone opening fence, as an
    answer cut short leaves it, is dropped)."""
    text = _lines(text)
    m = _FENCE.search(text)
    if m:
        return textwrap.dedent(m.group("code")).strip("\n")
    return re.sub(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n?", "", text.strip()).strip("\n")


_BRACKETED = re.compile(r"\[\s*(YES|NO)\s*\]", re.IGNORECASE)
_OFFERED = re.compile(r"\[\s*(YES|NO)\s*\]\s*(?:or|/|and)\s*\[\s*(YES|NO)\s*\]", re.IGNORECASE)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def yes_or_no(text: str) -> bool | None:
    """The answer to a yes/no question, read outside code spans and leaving out the choices as offered ("[YES] or
    [NO]"): the bracketed "[YES]" / "[NO]" when the answer holds one kind only, or the first of them when the answer
    starts with it; without brackets, a first word yes/no (emphasised or bare, any case); else None."""
    text = _OFFERED.sub(" ", _CODE.sub(" ", _lines(text)))
    bracketed = list(_BRACKETED.finditer(text))
    kinds = {m.group(1).upper() for m in bracketed}
    if len(kinds) == 1:
        return kinds == {"YES"}
    if bracketed:
        first = bracketed[0]
        return first.group(1).upper() == "YES" if not text[:first.start()].strip(" \n*_#>\"'(") else None
    head = re.match(r"^[\s*_#>\"'(]*(yes|no)\b", text, re.IGNORECASE)
    return head.group(1).lower() == "yes" if head else None
