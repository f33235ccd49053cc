"""Reading a model's answer into named parts. Every reader returns what it found or says why it found nothing, so a
dropped answer is counted under a reason.

    from raylib.synth.sections import header_sections, marked_sections, strip_fence, yes_or_no
    header_sections("[INSTRUCTION]\\nSort a list.\\n[CRITERIA]\\nFast.", ["INSTRUCTION", "CRITERIA"])
        # ({"INSTRUCTION": "Sort a list.", "CRITERIA": "Fast."}, "")
    marked_sections("-- BEGIN [REFLECTION] --\\nFine.\\n-- END [REFLECTION] --", ["REFLECTION"])   # ({...}, "")
    yes_or_no("[YES] It fixes a bug.")        # True; "[NO] ..." -> False; undecided -> None
    strip_fence("```python\\nx = 1\\n```")     # "x = 1"

Header sections (Commit-Instruct): a header is a line starting with the name in brackets or markdown ("[NAIVE_CODE]",
"**Naive Code:**", "## NAIVE CODE"; "[Criteria]: text" keeps "text", "[CRITERIA] is met" is a mention; never inside
a ``` fence); a section runs to the next header. Marked sections (Critic-Evol): text between "-- BEGIN [NAME] --"
and "-- END [NAME] --" lines.
"""

from __future__ import annotations

import re

__all__ = ["header_sections", "marked_sections", "strip_fence", "yes_or_no"]

_FENCE = re.compile(r"```[^\n`]*\n(.*?)\n?```", re.DOTALL)


def _header_pattern(name: str) -> re.Pattern:
    """A line that is the header of `name` ("NAIVE_CODE": "[NAIVE_CODE]", "**Naive code:**", "## NAIVE CODE", ...):
    group "open" is a bracket, "hash" a heading mark, "emph" emphasis, "colon" a colon; "rest" the text after it."""
    words = r"[\s_-]*".join(re.escape(w) for w in re.split(r"[\s_-]+", name) if w)
    return re.compile(r"^\s*(?P<hash>#+\s*)?(?P<emph>[*_]{2})?\s*(?P<open>\[)?\s*[*_]*" + words
                      + r"(?![A-Za-z0-9])[*_]*\s*\]?\s*(?P<colon>:)?[\s*_]*(?P<rest>.*)$", re.IGNORECASE)


def _header_name(line: str, patterns: dict[str, re.Pattern]) -> tuple[str, str] | None:
    """(section name, text after the header on its line) when `line` is a header of one of `patterns`, else None.
    The name must be bracketed, emphasised, a markdown heading or followed by a colon; text after it on the same line
    needs the colon ("[CRITERIA]: Fast." is a header, "[IMPROVED_CODE] is faster." a mention)."""
    for name, pattern in patterns.items():
        m = pattern.match(line)
        if m is None or not (m.group("open") or m.group("hash") or m.group("emph") or m.group("colon")):
            continue
        rest = m.group("rest").strip()
        if rest and not m.group("colon"):  # "[IMPROVED_CODE] handles ...": a reference in running text
            continue
        return name, rest
    return None


def header_sections(text: str, names: list[str]) -> tuple[dict[str, str], str]:
    """({name: its text}, "") when every one of `names` is a header exactly once with non-empty text; else
    ({}, the reason: "missing section X", "section X appears twice", "section X is empty")."""
    wanted = {n: _header_pattern(n) for n in names}
    found: dict[str, list[str]] = {}
    current, fenced = None, False
    for line in text.splitlines():
        header = None if fenced else _header_name(line, wanted)
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if header is not None:
            name, rest = header
            if name in found:
                return {}, f"section {name} appears twice"
            found[name], current = ([rest] if rest else []), name
        elif current is not None:
            found[current].append(line)
    for name in names:
        if name not in found:
            return {}, f"missing section {name}"
    sections = {name: "\n".join(found[name]).strip() for name in names}
    for name in names:
        if not sections[name]:
            return {}, f"section {name} is empty"
    return sections, ""


def marked_sections(text: str, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """({name: text} of the `names` found between "-- BEGIN [NAME] --" and "-- END [NAME] --", each stripped and
    non-empty; the LAST such block wins), and the names missing or empty."""
    found, missing = {}, []
    for name in names:
        blocks = re.findall(r"--\s*BEGIN\s*\[" + re.escape(name) + r"\]\s*--[^\n]*\n(.*?)--\s*END\s*\["
                            + re.escape(name) + r"\]\s*--", text, re.DOTALL)
        body = blocks[-1].strip() if blocks else ""
        if body:
            found[name] = body
        else:
            missing.append(name)
    return found, missing


def strip_fence(text: str) -> str:
    """The code of a section: the contents of its first ``` fenced block, or the text itself when it has none (a
    lone opening fence, as an answer cut short leaves it, is dropped)."""
    m = _FENCE.search(text)
    if m:
        return m.group(1).strip("\n")
    return re.sub(r"^```[^\n`]*\n?", "", text.strip()).strip("\n")


_DECISION = re.compile(r"\[\s*(YES|NO)\s*\]", re.IGNORECASE)


def yes_or_no(text: str) -> bool | None:
    """The answer to a yes/no question: None when it holds both "[YES]" and "[NO]"; else its first word when that is
    yes/no (bracketed, emphasised or bare, any case); else the bracketed "[YES]" / "[NO]" it holds; else None."""
    bracketed = {m.group(1).upper() for m in _DECISION.finditer(text) if m.group(1)}
    if len(bracketed) == 2:  # "[YES] or [NO]?": both offered, neither chosen
        return None
    head = re.match(r"^[\s*_#>`\"'(]*(\[\s*)?(yes|no)\b", text, re.IGNORECASE)
    if head:
        return head.group(2).lower() == "yes"
    if bracketed:
        return bracketed == {"YES"}
    return None
