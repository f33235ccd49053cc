"""Commit-Instruct (CodeFavor): turn a code commit into a preference pair through a three-turn conversation with an
LLM: explain the change; decide whether it clearly improves the code ([YES]/[NO]); if so, write an instruction,
a criterion, a naive and an improved program, and feedback.

    from raylib.synth.commit_instruct import read_commits, explain_messages, decide_messages, construct_messages
    commits, skipped = read_commits("editpackft.jsonl")                 # EditPackFT rows -> Commit
    explain_messages(prompts, commit)                                   # turn 1
    decide_messages(prompts, commit, explanation)                       # turn 2 (after the model's explanation)
    construct_messages(prompts, commit, explanation, decision)          # turn 3 (after [YES])
    pair, reason = pair_from_answer(commit, answer, prompts, model)     # a pair, or None and why it was dropped

Input rows (EditPackFT / CommitPackFT): "old_contents", "new_contents", "message" (or "subject"), and optionally
"lang", "license", "commit" (the id; else the line number). Pure: the conversation runs in jobs/synth_prefs.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from raylib.files import DataError, read_records
from raylib.synth.pairs import make_pair
from raylib.synth.prompts import PromptSet
from raylib.synth.sections import header_sections, strip_fence, yes_or_no

__all__ = ["SECTIONS", "Commit", "construct_messages", "decide_messages", "explain_messages", "pair_from_answer",
           "read_commits"]

SECTIONS = ["INSTRUCTION", "CRITERIA", "NAIVE_CODE", "IMPROVED_CODE", "FEEDBACK"]


@dataclasses.dataclass(frozen=True)
class Commit:
    commit_id: str
    message: str
    old_code: str
    new_code: str
    language: str
    license: str = ""


def read_commits(path: str | Path, languages: list[str] | None = None, licenses: list[str] | None = None
                 ) -> tuple[list[Commit], list[dict]]:
    """(commits, skipped) from an EditPackFT-style file. Skipped rows ({"source": commit id, "line", "reason"}): an
    empty old or new version, no change, a language or license outside the lists given (None: any).

    Raises:
        DataError: a row lacks old_contents/new_contents/message or has a non-string one (names file, line, field);
            two rows share a commit id; the file has no commit left.
    """
    commits, skipped, seen = [], [], {}
    for line, row in read_records(path):
        for name in ("old_contents", "new_contents"):
            if not isinstance(row.get(name), str):
                raise DataError(path, line, f"field {name!r} is missing or not a string (an EditPackFT row has "
                                "old_contents, new_contents, message; got " + ", ".join(sorted(row)[:8]) + ")")
        message = row.get("message", row.get("subject"))
        if not isinstance(message, str):
            raise DataError(path, line, "field 'message' (or 'subject') is missing or not a string")
        commit_id = str(row.get("commit") or f"line-{line}")
        if commit_id in seen:
            raise DataError(path, line, f"commit {commit_id!r} appears twice (first on line {seen[commit_id]})")
        seen[commit_id] = line
        language = str(row.get("lang") or "python").lower()
        language = "html" if language.startswith("html") else language
        commit = Commit(commit_id, message.strip(), row["old_contents"], row["new_contents"], language,
                        str(row.get("license") or ""))
        reason = ("empty old or new contents" if not commit.old_code.strip() or not commit.new_code.strip()
                  else "no change" if commit.old_code.strip() == commit.new_code.strip()
                  else f"language {language!r} not in {languages}" if languages and language not in languages
                  else f"license {commit.license!r} not in {licenses}" if licenses and commit.license not in licenses
                  else "")
        if reason:
            skipped.append({"source": commit_id, "line": line, "reason": reason})
        else:
            commits.append(commit)
    if not commits:
        raise DataError(path, 0, f"no commit to use ({len(skipped)} skipped: "
                        + (skipped[0]["reason"] if skipped else "the file is empty") + ")")
    return commits, skipped


def _explain(prompts: PromptSet, commit: Commit) -> str:
    return prompts.fill("explain", message=commit.message, language=commit.language, old_code=commit.old_code.rstrip(),
                        new_code=commit.new_code.rstrip())


def explain_messages(prompts: PromptSet, commit: Commit) -> list[dict]:
    return prompts.messages(_explain(prompts, commit))


def decide_messages(prompts: PromptSet, commit: Commit, explanation: str) -> list[dict]:
    return prompts.messages(_explain(prompts, commit), explanation, prompts.fill("decide"))


def construct_messages(prompts: PromptSet, commit: Commit, explanation: str, decision: str) -> list[dict]:
    return prompts.messages(_explain(prompts, commit), explanation, prompts.fill("decide"), decision,
                            prompts.fill("construct", language=commit.language))


def decision_of(answer: str) -> tuple[bool, str]:
    """(go on to the example?, the reason when not): [YES] goes on; [NO] and an undecided answer stop."""
    verdict = yes_or_no(answer)
    if verdict is None:
        return False, "no [YES]/[NO] decision"
    return verdict, "" if verdict else "not an improvement ([NO])"


def pair_from_answer(commit: Commit, answer: str, prompts: PromptSet, model: str) -> tuple[dict | None, str]:
    """The pair the third answer describes (improved code chosen, naive code rejected), or (None, why it is dropped):
    a missing, repeated or empty section, code sections without code, or the same code twice."""
    sections, reason = header_sections(answer, SECTIONS)
    if reason:
        return None, reason
    naive, improved = strip_fence(sections["NAIVE_CODE"]), strip_fence(sections["IMPROVED_CODE"])
    if not naive.strip() or not improved.strip():
        return None, "a code section holds no code"
    if naive.strip() == improved.strip():
        return None, "naive and improved code are the same"
    provenance = {"method": "commit-instruct", "prompts": prompts.label, "model": model, "commit": commit.commit_id,
                  "language": commit.language, "license": commit.license}
    return make_pair(task_id=commit.commit_id, instruction=sections["INSTRUCTION"], criteria=sections["CRITERIA"],
                     chosen=improved, rejected=naive, objective="improvement", feedback=sections["FEEDBACK"],
                     provenance=provenance), ""
