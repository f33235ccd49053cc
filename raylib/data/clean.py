"""Cleaning TACO / APPS problems for training (CodePRM's recipe): the rules, as pure functions over the raw rows.

    from raylib.data.clean import CleaningSettings, NgramIndex, clean, evaluation_texts, read_rows
    rows, removed = read_rows("taco_train.jsonl")                       # parsed rows (tests normalised), malformed ones
    index = NgramIndex(evaluation_texts(settings.decontamination.against), settings.decontamination.n)
    rows, more = clean(rows, settings, index)                           # every rule below, in order
    samples = execution_samples(rows)                                   # the reference solutions to run (sandbox)
    rows, more = keep_passing(rows, results, settings.solutions_per_problem)

The rules, in the order `clean` applies them (a problem is removed by the first rule it fails; each `Removal` names
the task, the reason and the particulars; solution removals carry the solution's index in the input list):

| reason (problem)       | rule                                                                                 |
|------------------------|--------------------------------------------------------------------------------------|
| malformed              | unreadable line, no question, input_output/solutions not JSON, inputs != outputs     |
| duplicate task id      | a task id an earlier row has (ids: problem_id / id / name / taco/<line>, as the loader) |
| too few tests          | fewer than min_tests distinct test cases                                             |
| question too long      | question over max_question_chars                                                     |
| contaminated           | word n-gram overlap with an evaluation problem at or over the threshold              |
| no usable solution     | no solution left after the solution rules                                            |
| duplicate question     | same normalised question text as an earlier kept problem                             |
| unsupported            | (execution filter) codeloop's loader skips it (a kind of test the sandbox cannot run) |
| unloadable             | (execution filter) codeloop's loader refuses it                                      |
| no passing solution    | (execution filter) none of the solutions run passes every test                       |

| reason (solution)          | rule                                                                             |
|----------------------------|----------------------------------------------------------------------------------|
| solution too long          | over max_solution_chars (after stripping)                                        |
| solution too short         | fewer than min_solution_lines lines                                              |
| does not parse             | not valid Python (ast.parse)                                                     |
| duplicate solution         | the same text as an earlier solution of the problem                              |
| not tried                  | beyond the first max_attempts usable solutions (never parsed nor run)            |
| fails tests                | (execution filter) the sandbox's verdict is not passed                           |
| over the per-problem cap   | (execution filter) passes, after solutions_per_problem others did                |

Tests are normalised: stdin/stdout cases become strings with "\\n" line ends (a list of lines is joined, with a final
newline, as codeloop's loader reads it), call-based inputs become argument lists (a bare value `v` becomes `[v]`)
with the outputs kept as given; repeated cases are dropped before counting. Solutions are stripped.

Each rule records every solution it removes, also of a problem it then removes for having none left; problems removed
whole by a problem rule list no solutions.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import Field, model_validator

from raylib.config import Section
from raylib.data.problems import taco_task_id
from raylib.data.samples import Sample
from raylib.files import DataError, read_records

__all__ = ["CleaningSettings", "Decontamination", "EvaluationSet", "NgramIndex", "Removal", "TacoRow", "clean",
           "contaminated", "deduplicate", "enough_tests", "evaluation_texts", "execution_samples", "keep_passing",
           "ngrams", "normalise_question", "normalise_tests", "parse_row", "question_length", "read_rows",
           "removed_by_reason", "taco_record", "usable_solutions"]


# ------------------------------------------------------------------------------------------------- settings


class EvaluationSet(Section):
    dataset: str = Field(..., description="A codeloop dataset name (humaneval, mbpp, stdio for LiveCodeBench, ...).")
    path: str | None = Field(None, description="Its file; None: the shipped one (humaneval, humaneval+, mbpp, "
                             "mbpp+).")

    @model_validator(mode="after")
    def _known(self):
        from raylib.data.problems import check_dataset

        check_dataset(self.dataset, self.path)
        return self


class Decontamination(Section):
    against: list[EvaluationSet] = Field(
        default_factory=lambda: [EvaluationSet(dataset="humaneval"), EvaluationSet(dataset="mbpp")],
        description="Evaluation sets whose problem statements no training question may overlap (LiveCodeBench: "
        "{dataset: stdio, path: FILE}); []: no decontamination.")
    n: int = Field(13, ge=1, description="Word n-gram length (13, as common practice since GPT-3).")
    threshold: float = Field(0.2, ge=0, le=1, description="Contaminated when the shared n-grams are at least this "
                             "fraction of the shorter text's n-grams (the question's or the evaluation problem's): a "
                             "copied statement with sections added still counts, a few shared boilerplate sentences "
                             "among hundreds of n-grams do not; 0: any shared n-gram. Texts of fewer than n words "
                             "have no n-grams and are never flagged.")


class CleaningSettings(Section):
    """The rules' settings; the defaults are CodePRM's (cassanof/CodeRM coderm/dataset/clean_taco.py and
    filter_not_executing.py; it counts tokens of the StarCoder2 tokenizer, 2048, where this counts characters)."""

    language: Literal["python"] = Field("python", description="The solutions' language (the parse check).")
    min_tests: int = Field(10, ge=1, description="Fewest distinct test cases a problem must have.")
    max_question_chars: int = Field(8192, ge=1, description="Longest question, characters.")
    max_solution_chars: int = Field(8192, ge=1, description="Longest solution (stripped), characters.")
    min_solution_lines: int = Field(3, ge=1, description="Fewest lines a solution must have.")
    max_attempts: int = Field(100, ge=1, description="Most solutions per problem run in the sandbox (the first usable "
                              "ones, in input order).")
    solutions_per_problem: int = Field(75, ge=1, description="Most passing solutions kept per problem.")
    decontamination: Decontamination = Field(default_factory=Decontamination, description="n-gram decontamination "
                                             "against evaluation sets.")

    @model_validator(mode="after")
    def _cap_fits(self):
        if self.solutions_per_problem > self.max_attempts:
            raise ValueError(f"solutions_per_problem ({self.solutions_per_problem}) cannot exceed max_attempts "
                             f"({self.max_attempts}): only that many solutions are run")
        return self


# ------------------------------------------------------------------------------------------------- rows


@dataclass
class TacoRow:
    """One parsed input row: its task id, input line, the raw row, the normalised tests and the solutions still kept
    as (index in the input's list, stripped program)."""

    task_id: str
    line: int
    raw: dict
    tests: dict
    solutions: list[tuple[int, str]] = field(default_factory=list)

    @property
    def question(self) -> str:
        return self.raw["question"]

    @property
    def test_count(self) -> int:
        return len(self.tests["inputs"])


@dataclass(frozen=True)
class Removal:
    """A removed problem (solution None) or one of its solutions (its index in the input's list)."""

    task_id: str
    reason: str
    detail: str = ""
    solution: int | None = None
    line: int = 0

    def as_row(self) -> dict:
        return {"task_id": self.task_id, "line": self.line, "solution": self.solution, "reason": self.reason,
                "detail": self.detail}


Rows = list[TacoRow]


def _json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not JSON ({exc.msg})") from None


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(map(str, value)) + "\n"
    return str(value).replace("\r\n", "\n")


def normalise_tests(spec: Any) -> dict:
    """TACO's input_output as codeloop runs it: {"inputs": [str], "outputs": [str]} for stdin/stdout problems,
    {"fn_name", "inputs": [[args...]], "outputs": [...]} for call-based ones, without repeated cases.

    Raises:
        ValueError: not a mapping, inputs/outputs not lists, or a different number of each.
    """
    spec = spec or {}
    if not isinstance(spec, dict):
        raise ValueError(f"input_output is a {type(spec).__name__}, not a mapping")
    inputs, outputs = spec.get("inputs") or [], spec.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ValueError("input_output's inputs and outputs must be lists")
    if len(inputs) != len(outputs):
        raise ValueError(f"input_output has {len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = spec.get("fn_name")
    if fn_name:
        cases = [(i if isinstance(i, list) else [i], o) for i, o in zip(inputs, outputs)]
    else:
        cases = [(_text(i), _text(o)) for i, o in zip(inputs, outputs)]
    seen, unique = set(), []
    for case in cases:
        key = json.dumps(case, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(case)
    tests = {"fn_name": fn_name} if fn_name else {}
    return {**tests, "inputs": [i for i, _ in unique], "outputs": [o for _, o in unique]}


def parse_row(row: dict, line: int) -> TacoRow:
    """One TACO/APPS row with its tests normalised and its solutions read (not yet checked); ValueError when
    malformed."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no question")
    if "input_output" not in row:
        raise ValueError("no input_output")
    tests = normalise_tests(_json(row["input_output"], "input_output"))
    solutions = _json(row.get("solutions"), "solutions") or []
    if not isinstance(solutions, list):
        raise ValueError(f"solutions is a {type(solutions).__name__}, not a list")
    return TacoRow(taco_task_id(row, line), line, row, tests, list(enumerate(solutions)))


def read_rows(path: str | Path, limit: int | None = None) -> tuple[Rows, list[Removal]]:
    """The rows of a TACO/APPS-format file (the first `limit`), parsed; unreadable or malformed lines and repeated task
    ids come back as removals.

    Raises:
        DataError: the file is missing or unreadable.
    """
    bad: list[DataError] = []
    rows, removed, seen = [], [], {}
    last = 0  # the last line read (with `limit`, unreadable lines after it are not counted)
    for count, (line, row) in enumerate(read_records(path, bad_lines=bad)):
        if limit is not None and count >= limit:
            break
        last = line
        try:
            parsed = parse_row(row, line)
        except ValueError as exc:
            removed.append(Removal(taco_task_id(row, line), "malformed", str(exc), line=line))
            continue
        if parsed.task_id in seen:
            removed.append(Removal(parsed.task_id, "duplicate task id", f"line {seen[parsed.task_id]} has it",
                                   line=line))
            continue
        seen[parsed.task_id] = line
        rows.append(parsed)
    else:
        last = None
    removed += [Removal(f"line {err.line}", "malformed", err.message, line=err.line) for err in bad
                if last is None or err.line < last]
    return rows, removed


# ------------------------------------------------------------------------------------------------- the rules


def _split(rows: Rows, reason: str, check) -> tuple[Rows, list[Removal]]:
    """Keep the rows `check` returns "" for; the others are removed for `reason` with the detail it returns."""
    kept, removed = [], []
    for row in rows:
        detail = check(row)
        if detail:
            removed.append(Removal(row.task_id, reason, detail, line=row.line))
        else:
            kept.append(row)
    return kept, removed


def enough_tests(rows: Rows, settings: CleaningSettings) -> tuple[Rows, list[Removal]]:
    """Problems with at least `min_tests` distinct test cases."""
    return _split(rows, "too few tests", lambda r: f"{r.test_count} tests, fewer than {settings.min_tests}"
                  if r.test_count < settings.min_tests else "")


def question_length(rows: Rows, settings: CleaningSettings) -> tuple[Rows, list[Removal]]:
    """Problems whose question has at most `max_question_chars` characters."""
    most = settings.max_question_chars
    return _split(rows, "question too long", lambda r: f"{len(r.question)} characters, more than {most}"
                  if len(r.question) > most else "")


def _parses(code: str) -> str:
    """"" when `code` is valid Python, else the parser's complaint."""
    try:
        with warnings.catch_warnings():  # invalid escape sequences and the like: not our business here
            warnings.simplefilter("ignore")
            ast.parse(code)
    except SyntaxError as exc:
        return f"{exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return ""


def usable_solutions(rows: Rows, settings: CleaningSettings) -> tuple[Rows, list[Removal]]:
    """Each problem's solutions that are text, within the length limits, parse and are not repeats, stripped; only the
    first `max_attempts` such are kept (the rest are "not tried", and never parsed). Problems left without any are
    removed ("no usable solution")."""
    kept, removed = [], []
    for row in rows:
        usable, seen = [], set()
        for index, code in row.solutions:
            reason = detail = ""
            text = code.strip() if isinstance(code, str) else None
            if len(usable) >= settings.max_attempts:
                reason, detail = "not tried", f"{settings.max_attempts} usable solutions before it"
            elif text is None:
                reason, detail = "does not parse", f"a {type(code).__name__}, not program text"
            elif len(text) > settings.max_solution_chars:
                reason, detail = "solution too long", f"{len(text)} characters, more than {settings.max_solution_chars}"
            elif text.count("\n") + 1 < settings.min_solution_lines:
                lines = text.count("\n") + 1
                reason = "solution too short"
                detail = f"{lines} line{'s' if lines > 1 else ''}, fewer than {settings.min_solution_lines}"
            elif text in seen:
                reason, detail = "duplicate solution", "the same text as an earlier solution"
            elif error := _parses(text):
                reason, detail = "does not parse", error
            if reason:
                removed.append(Removal(row.task_id, reason, detail, index, row.line))
            else:
                seen.add(text)
                usable.append((index, text + "\n"))
        if usable:
            row.solutions = usable
            kept.append(row)
        else:
            given = len(row.solutions)
            removed.append(Removal(row.task_id, "no usable solution",
                                   f"none of its {given} solutions is usable" if given else "no solutions given",
                                   line=row.line))
    return kept, removed


def normalise_question(text: str) -> str:
    """Lowercase words (\\w+) joined by single spaces: what duplicate questions and n-grams compare."""
    return " ".join(re.findall(r"\w+", text.lower()))


def deduplicate(rows: Rows) -> tuple[Rows, list[Removal]]:
    """The first problem of each normalised question text."""
    first: dict[str, str] = {}

    def check(row: TacoRow) -> str:
        key = normalise_question(row.question)
        if key in first:
            return f"same question as {first[key]}"
        first[key] = row.task_id
        return ""

    return _split(rows, "duplicate question", check)


def ngrams(text: str, n: int) -> set[str]:
    """The word n-grams of the normalised text (none when it has fewer than n words)."""
    words = normalise_question(text).split()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


class NgramIndex:
    """The word n-grams of evaluation problems, for decontamination: `overlap(text)` finds the evaluation problem
    sharing the largest fraction of n-grams with `text` (relative to the shorter of the two)."""

    def __init__(self, texts: dict[str, str], n: int):
        self.n = n
        self.sizes: dict[str, int] = {}
        self.owners: dict[str, list[str]] = {}
        for key, text in texts.items():
            grams = ngrams(text, n)
            if grams:
                self.sizes[key] = len(grams)
                for gram in grams:
                    self.owners.setdefault(gram, []).append(key)

    def overlap(self, text: str) -> tuple[str, int, float] | None:
        """(evaluation problem, shared n-grams, shared / the shorter text's n-grams) of the problem overlapping
        `text` most, or None when none shares an n-gram."""
        grams = ngrams(text, self.n)
        shared = Counter(key for gram in grams for key in self.owners.get(gram, ()))
        if not shared:
            return None
        best = max(shared, key=lambda k: (shared[k] / min(len(grams), self.sizes[k]), shared[k]))
        return best, shared[best], shared[best] / min(len(grams), self.sizes[best])


def contaminated(rows: Rows, index: NgramIndex, threshold: float) -> tuple[Rows, list[Removal]]:
    """Problems whose question overlaps no evaluation problem by `threshold` or more (see NgramIndex.overlap)."""

    def check(row: TacoRow) -> str:
        found = index.overlap(row.question)
        if found is None or found[2] < threshold:
            return ""
        key, shared, fraction = found
        return f"{shared} shared {index.n}-grams with {key} ({fraction:.2f} of the shorter text's)"

    return _split(rows, "contaminated", check)


def clean(rows: Rows, settings: CleaningSettings, index: NgramIndex | None,
          progress=None) -> tuple[Rows, list[Removal]]:
    """Every rule before the execution filter, in the module's order; `index` None: no decontamination.
    `progress(n)` is called as n more problems are done (most of the time goes to parsing solutions)."""
    removed: list[Removal] = []
    given = len(rows)
    rows, out = enough_tests(rows, settings)
    removed += out
    rows, out = question_length(rows, settings)
    removed += out
    if index is not None:
        rows, out = contaminated(rows, index, settings.decontamination.threshold)
        removed += out
    if progress:
        progress(given - len(rows))
    usable: Rows = []
    for start in range(0, len(rows), 256):
        chunk, out = usable_solutions(rows[start:start + 256], settings)
        usable += chunk
        removed += out
        if progress:
            progress(len(rows[start:start + 256]))
    rows, out = deduplicate(usable)
    return rows, removed + out


# ------------------------------------------------------------------------------------------------- evaluation sets

_STATEMENT_FIELDS = ("question_content", "question", "description", "prompt", "text")
_ID_FIELDS = ("question_id", "task_id", "problem_id", "id", "name")


def evaluation_texts(sets: Iterable[EvaluationSet]) -> dict[str, str]:
    """{"dataset:task_id": problem statement} of the evaluation sets: the shipped ones (no path) through `load_problems`
    (their prompts); files by path straight from their rows' statement field (question_content, question,
    description, prompt or text; nothing else of a row is decoded, so LiveCodeBench's compressed private tests are
    never unpacked, and rows codeloop cannot run still count).

    Raises:
        DataError: a file is missing or unreadable, or a row has no statement field.
    """
    from raylib.data.problems import load_problems

    texts: dict[str, str] = {}
    for spec in sets:
        if spec.path is None:
            texts.update({f"{spec.dataset}:{task_id}": p.prompt for task_id, p in load_problems(spec.dataset).items()})
            continue
        label = f"{spec.dataset}[{Path(spec.path).name}]"
        for line, row in read_records(spec.path):
            statement = next((row[f] for f in _STATEMENT_FIELDS if isinstance(row.get(f), str)), None)
            if statement is None:
                raise DataError(spec.path, line, f"no problem statement: expected one of the fields "
                                f"{list(_STATEMENT_FIELDS)} (has {sorted(row)[:12]})")
            task_id = next((str(row[f]) for f in _ID_FIELDS if row.get(f) is not None), f"line {line}")
            texts[f"{label}:{task_id}"] = statement
    return texts


# ------------------------------------------------------------------------------------------------- execution filter


def taco_record(row: TacoRow, solutions: list[str] | None = None) -> dict:
    """The row in TACO format as codeloop's loader reads it: the input's fields, `problem_id` = the task id, the
    normalised `input_output` and `solutions` (default: the row's kept ones) as JSON text."""
    programs = [code for _, code in row.solutions] if solutions is None else solutions
    return {"problem_id": row.task_id, **{k: v for k, v in row.raw.items() if k != "problem_id"},
            "input_output": json.dumps(row.tests, ensure_ascii=False),
            "solutions": json.dumps(programs, ensure_ascii=False)}


def execution_samples(rows: Rows) -> list[Sample]:
    """One sample per kept solution; its sample_id is the solution's index in the input's list (stable across runs
    with other settings, so an evaluation directory resumes)."""
    return [Sample(row.task_id, index, code) for row in rows for index, code in row.solutions]


def keep_passing(rows: Rows, results: dict[tuple[str, int], dict], cap: int) -> tuple[Rows, list[Removal]]:
    """The first `cap` solutions of each problem whose result row (by (task_id, sample_id)) passed; the others are
    removed ("fails tests", "over the per-problem cap"), and problems with none passing too ("no passing solution",
    with the statuses seen)."""
    kept, removed = [], []
    for row in rows:
        passing, failed, statuses = [], [], Counter()
        for index, code in row.solutions:
            result = results[(row.task_id, index)]
            statuses[result["status"]] += 1
            if not result["passed"]:
                error = (result.get("error") or "").strip().splitlines()
                failed.append(Removal(row.task_id, "fails tests", result["status"] + (f": {error[-1][:200]}"
                                                                                      if error else ""),
                                      index, row.line))
            elif len(passing) < cap:
                passing.append((index, code))
            else:
                failed.append(Removal(row.task_id, "over the per-problem cap", f"{cap} passing solutions before it",
                                      index, row.line))
        removed += failed
        if passing:
            row.solutions = passing
            kept.append(row)
        else:
            seen = ", ".join(f"{n} {status}" for status, n in statuses.most_common())
            removed.append(Removal(row.task_id, "no passing solution", f"none of {len(row.solutions)} passes "
                                   f"({seen})", line=row.line))
    return kept, removed


def removed_by_reason(removed: Iterable[Removal]) -> dict[str, dict[str, int]]:
    """{"problems": {reason: count}, "solutions": {reason: count}}, most frequent first."""
    removed = list(removed)
    return {"problems": dict(Counter(r.reason for r in removed if r.solution is None).most_common()),
            "solutions": dict(Counter(r.reason for r in removed if r.solution is not None).most_common())}
