"""The test-time scaling strategies as pure functions: from one problem's attempts so far, what to do next.

    from raylib.scale.strategies import ScaleSettings, next_actions
    actions = next_actions(ScaleSettings(strategy="revision", budget=8), first_turn, rows)
    # [Generate(attempts=(3,), messages=(...))] / [Judge(attempts=(3,), feedback="binary")] / [] when done

`rows` are the problem's attempts.jsonl rows by attempt number; `first_turn` the chat that asks the problem. An action
names the attempts it makes or updates; the runner carries it out and merges what it learns into those rows
(`response`/`solution`, `passed`/`status`/`feedback`, `public`, `score`, `selected_for`), then asks again. Because
the next step is a function of the rows alone, a killed run resumes by reading attempts.jsonl back: nothing else is
kept. Several actions returned together are independent (the runner runs them at once).

Strategies (budget B) and how the curve counts them (solved within k):
- revision: one growing chat, greedy by default: answer, judge, a feedback turn, again. Solved within k: a pass among
  the first k attempts.
- self-refine: an answer; then the model's last answer and a fixed critique turn (no execution), each new answer
  judged. Counted as revision.
- best-of-n: independent samples. oracle: judged in order until one passes (counted as revision); verifier: B samples,
  a verifier picks one and only the pick is judged (solved within k: the pick among the first k passed).
- self-consistency: B samples, a majority over normalised code (or math answers), only the winner judged (the
  majority of the first k).
- beam: the engine's beam search of width B. oracle: the beams judged best first (a pass among the first k beams);
  verifier: a verifier ranks the beams, its pick judged (the pick among the first k).
- sample-debug (S*): B samples, each debugged up to R rounds on its public tests' feedback, then a verifier picks one
  final program (the pick among the first k candidates).
- fttt: every attempt from the original prompt alone (sampled, as FTTT does); after a failed one, one optimizer step
  of the problem's own LoRA adapter on the feedback turn's NLL (raylib.scale.ttt). Counted as revision.
- fttt+: as fttt, but the base model first reflects on the failure and the step learns the feedback and the
  reflection; attempts or reflections cut by the token limit are not trained on.
- optune: as fttt, but the step is OpTune's learned update from the latest failure (raylib.scale.optune); attempts
  alternate between the base model (even) and that update (odd).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from raylib.scale.feedback import LEVELS
from raylib.scale.ttt import TTTSettings

__all__ = ["CRITIQUE", "SELECTION", "STRATEGIES", "TTT_STRATEGIES", "Beam", "Check", "Generate", "Judge", "Rank",
           "Reflect", "ScaleSettings", "Train", "next_actions", "selections"]

STRATEGIES = ("revision", "self-refine", "best-of-n", "self-consistency", "beam", "sample-debug", "fttt", "fttt+",
              "optune")
TTT_STRATEGIES = ("fttt", "fttt+", "optune")  # strategies that train the weights between attempts (raylib.scale.ttt)
# Self-Refine's feedback turn as FTTT asks it (madaan/self-refine, GSM feedback prompt): no execution, the model's own
# critique of its last answer, whose reply is the next answer.
CRITIQUE = ("There is an error in the solution above because of lack of understanding of the question. What is the "
            "error? To find the error, go through semantically complete blocks of the solution, and check if "
            "everything looks good.")


class ScaleSettings(BaseModel):
    """A strategy and its knobs."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["revision", "self-refine", "best-of-n", "self-consistency", "beam", "sample-debug",
                      "fttt", "fttt+", "optune"] = Field("revision", description="The loop run on each problem (see "
                                                              "raylib.scale.strategies).")
    budget: int = Field(8, ge=1, le=1024, description="Attempts per problem: answers judged (revision, self-refine, "
                        "best-of-n oracle), samples drawn (best-of-n verifier, self-consistency, sample-debug) or "
                        "the beam width (beam).")
    mode: Literal["oracle", "verifier"] = Field("oracle", description="best-of-n and beam: oracle (stop at the first "
                                                "pass, as FTTT counts it) or verifier (a verifier picks one; only "
                                                "that one is judged). sample-debug always uses a verifier.")
    verifier: str = Field("public-tests", description="The verifier of verifier mode and of sample-debug (a name of "
                          "raylib.rerank.verifiers: public-tests, clustering, orm, judge, ...).")
    feedback: Literal["binary", "public-tests", "traceback"] = Field(
        "binary", description="revision's feedback turn: binary (FTTT's words), public-tests (which visible test "
        "failed, expected versus got) or traceback (the visible tests' error); sample-debug always shows public "
        "tests.")
    temperature: float | None = Field(None, ge=0, description="None: greedy (0) for revision, self-refine and beam; "
                                      "0.6 (FTTT's) for the sampling strategies.")
    top_p: float | None = Field(None, gt=0, le=1, description="None: 1.0 when greedy, 0.95 (FTTT's) when sampling.")
    samples_per_call: int = Field(4, ge=1, le=256, description="Samples asked of the engine at once (best-of-n, "
                                  "self-consistency); oracle best-of-n judges them before asking for more.")
    debug_rounds: int = Field(2, ge=0, le=16, description="sample-debug: fixes asked per sample on public-test "
                              "feedback.")
    ttt: TTTSettings = Field(default_factory=TTTSettings, description="fttt: the per-problem adapter and optimizer.")
    optune: str | None = Field(None, description="optune: the trained learned optimizer (jobs/train_optune.py's "
                               "OUTPUT/optune).")

    @model_validator(mode="after")
    def _check(self):
        if self.feedback not in LEVELS:
            raise ValueError(f"feedback must be one of {LEVELS}")
        if self.strategy == "optune" and not self.optune:
            raise ValueError("--strategy optune needs --optune: the folder jobs/train_optune.py wrote (OUTPUT/optune)")
        return self

    def check_answers_only(self) -> None:
        """ValueError when the strategy needs programs (a verifier or visible tests), for problems whose answers are
        not programs (math)."""
        if self.strategy == "sample-debug":
            raise ValueError("sample-debug debugs programs on their visible tests: it needs a coding dataset")
        if self.selection and self.strategy != "self-consistency":
            raise ValueError("verifiers score programs: math problems run revision, self-refine, self-consistency, "
                             "and best-of-n and beam in oracle mode")

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.strategy in ("revision", "self-refine", "beam") else 0.6

    @property
    def sampling_top_p(self) -> float:
        if self.top_p is not None:
            return self.top_p
        return 1.0 if self.sampling_temperature == 0 else 0.95

    @property
    def selection(self) -> bool:
        """Whether the curve counts picks (the pick among the first k) rather than passes in order."""
        return self.strategy in SELECTION or (self.strategy in ("best-of-n", "beam") and self.mode == "verifier")


SELECTION = ("self-consistency", "sample-debug")  # always pick one; best-of-n and beam do in verifier mode


@dataclasses.dataclass(frozen=True)
class Generate:
    """Sample one answer per attempt for `messages` (a chat ending with a user turn); attempts are consecutive, so
    their seeds are the run's derived(seed, task) + attempt. `fields` go into every new row."""

    attempts: tuple[int, ...]
    messages: tuple[dict, ...]
    fields: tuple[tuple[str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class Beam:
    """The engine's beam search of width len(attempts); beam i (best first) becomes attempt attempts[i]."""

    attempts: tuple[int, ...]
    messages: tuple[dict, ...]


@dataclasses.dataclass(frozen=True)
class Judge:
    """Run these attempts on the hidden tests (`passed`, `status`); `feedback`: the level of the feedback turn to
    write for a failed one (None: none); `selected_for`: (attempt, (k, ...)) picks to record."""

    attempts: tuple[int, ...]
    feedback: str | None = None
    selected_for: tuple[tuple[int, tuple[int, ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class Check:
    """Run these attempts on the problem's visible tests only: `public` {"passed", "total"} and a public-tests
    `feedback` text for the next debugging round."""

    attempts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Rank:
    """Score these attempts with the run's verifier (`score`), all together (some verifiers compare candidates)."""

    attempts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Train:
    """Test-time training: an optimizer step of the problem's adapter on each of these failed attempts' feedback
    (`trained` and the step's `ttt_loss`; an attempt without a program is not trained on: `trained` False)."""

    attempts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Reflect:
    """FTTT+: the base model (adapter off) reflects on each of these failed attempts (`reflection`,
    `reflection_finish`); an attempt cut by the token limit, or without a program, gets an empty reflection."""

    attempts: tuple[int, ...]


Action = Generate | Beam | Judge | Check | Rank | Train | Reflect


def _answered(row: dict) -> bool:
    return "solution" in row


def _judged(row: dict) -> bool:
    return row.get("passed") is not None


def _chat(first: tuple[dict, ...], turns: list[tuple[str, str]]) -> tuple[dict, ...]:
    messages = list(first)
    for answer, reply in turns:
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": reply}]
    return tuple(messages)


def _dead_end(row: dict) -> bool:
    """An attempt the model produced no answer for (e.g. the chat outgrew the context): asking again the same way
    cannot help, so a sequential loop ends there."""
    return bool(row.get("error"))


def next_actions(settings: ScaleSettings, first: tuple[dict, ...], rows: dict[int, dict]) -> list[Action]:
    """What to do next for one problem (see the module docstring); [] when its loop is over."""
    s = settings.strategy
    if s in ("revision", "self-refine"):
        return _sequential(settings, first, rows)
    if s in TTT_STRATEGIES:
        return _test_time_training(settings, first, rows)
    if s == "best-of-n":
        return _oracle_samples(settings, first, rows) if settings.mode == "oracle" else \
            _pick(settings, rows, _samples(settings, first, rows))
    if s == "self-consistency":
        return _pick(settings, rows, _samples(settings, first, rows))
    if s == "beam":
        if not rows:
            return [Beam(tuple(range(settings.budget)), first)]
        if settings.mode == "oracle":
            todo = tuple(a for a in sorted(rows) if not _judged(rows[a]))
            return [Judge(todo)] if todo else []
        return _pick(settings, rows, [])
    return _sample_debug(settings, first, rows)


def _sequential(settings: ScaleSettings, first: tuple[dict, ...], rows: dict[int, dict]) -> list[Action]:
    if not rows:
        return [Generate((0,), first)]
    last = max(rows)
    row = rows[last]
    if not _judged(row):
        return [Judge((last,), feedback=settings.feedback if settings.strategy == "revision" else None)]
    if row["passed"] or _dead_end(row) or last + 1 >= settings.budget:
        return []
    if settings.strategy == "revision":
        turns = [(rows[a]["response"], rows[a]["feedback"]) for a in sorted(rows)]
        return [Generate((last + 1,), _chat(first, turns))]
    return [Generate((last + 1,), _chat(first, [(row["response"], CRITIQUE)]))]


def _test_time_training(settings: ScaleSettings, first: tuple[dict, ...], rows: dict[int, dict]) -> list[Action]:
    """FTTT: every attempt is asked from the original prompt alone; after a failed one, the weights learn from its
    feedback before the next."""
    if not rows:
        return [Generate((0,), first)]
    last = max(rows)
    row = rows[last]
    if not _judged(row):
        return [Judge((last,), feedback=settings.feedback)]
    if row["passed"] or last + 1 >= settings.budget:
        return []
    if settings.strategy == "fttt+" and "reflection" not in row:
        return [Reflect((last,))]
    if "trained" not in row:
        return [Train((last,))]
    return [Generate((last + 1,), first)]


def _oracle_samples(settings: ScaleSettings, first: tuple[dict, ...], rows: dict[int, dict]) -> list[Action]:
    if any(r.get("passed") for r in rows.values()):
        return []
    todo = tuple(a for a in sorted(rows) if not _judged(rows[a]))
    if todo:
        return [Judge(todo)]
    if len(rows) >= settings.budget:
        return []
    start = len(rows)
    return [Generate(tuple(range(start, min(settings.budget, start + settings.samples_per_call))), first)]


def _samples(settings: ScaleSettings, first: tuple[dict, ...], rows: dict[int, dict]) -> list[Action]:
    """Every sample still missing, in calls of samples_per_call (run at once: the picks need all of them)."""
    missing = [a for a in range(settings.budget) if a not in rows]
    calls, run = [], []
    for a in missing:
        if run and (a != run[-1] + 1 or len(run) == settings.samples_per_call):
            calls.append(Generate(tuple(run), first))
            run = []
        run.append(a)
    if run:
        calls.append(Generate(tuple(run), first))
    return calls


def _pick(settings: ScaleSettings, rows: dict[int, dict], generate: list[Action],
          candidates: list[int] | None = None) -> list[Action]:
    """Selection strategies once every candidate exists: score them (verifier), then judge the pick among the first
    k candidates for every k."""
    if generate:
        return generate
    candidates = sorted(rows) if candidates is None else candidates
    if settings.strategy != "self-consistency":
        unscored = tuple(a for a in candidates if "score" not in rows[a])
        if unscored:
            return [Rank(unscored)]
    picks = selections(settings, [rows[a] for a in candidates], candidates)
    todo = tuple(a for a in dict.fromkeys(picks.values()) if a is not None and not _judged(rows[a]))
    if not todo:
        return []
    by_attempt: dict[int, list[int]] = {}
    for k, a in picks.items():
        if a is not None:
            by_attempt.setdefault(a, []).append(k)
    return [Judge(todo, selected_for=tuple((a, tuple(by_attempt[a])) for a in todo))]


def selections(settings: ScaleSettings, rows: list[dict], attempts: list[int]) -> dict[int, int | None]:
    """{k: the attempt picked among the first k candidates} for k = 1..len(rows): the highest verifier score (ties:
    the earliest), or for self-consistency the most common normalised answer (`key`; ties: the one seen first;
    answers without a key lose to any with one)."""
    picks: dict[int, int | None] = {}
    if settings.strategy == "self-consistency":
        counts: dict[str, int] = {}
        first_seen: dict[str, int] = {}
        for k, (row, attempt) in enumerate(zip(rows, attempts), start=1):
            key = row.get("key") or ""
            counts[key] = counts.get(key, 0) + 1
            first_seen.setdefault(key, attempt)
            best = max(counts, key=lambda x: (x != "", counts[x], -first_seen[x]))
            picks[k] = first_seen[best]
        return picks
    best_attempt, best_score = None, None
    for k, (row, attempt) in enumerate(zip(rows, attempts), start=1):
        score = row.get("score")
        if best_attempt is None or (score is not None and (best_score is None or score > best_score)):
            best_attempt, best_score = attempt, score
        picks[k] = best_attempt
    return picks


def _sample_debug(settings: ScaleSettings, first: tuple[dict, ...], rows: dict[int, dict]) -> list[Action]:
    """Candidate c's round r is attempt c * (R + 1) + r; a candidate is final when its public tests pass, it has no
    public tests, its rounds are used up, or it produced no answer."""
    per = settings.debug_rounds + 1
    actions: list[Action] = []
    finals: list[int] = []
    checks: list[int] = []
    for c in range(settings.budget):
        mine = [c * per + r for r in range(per) if c * per + r in rows]
        if not mine:
            actions.append(Generate((c * per,), first, (("candidate", c), ("round", 0))))
            continue
        last = mine[-1]
        row = rows[last]
        public = row.get("public")
        if public is None and not _dead_end(row):
            checks.append(last)
            continue
        if (_dead_end(row) or not public["total"] or public["passed"] == public["total"]
                or len(mine) == per):
            finals.append(last)
            continue
        turns = [(rows[a]["response"], rows[a]["feedback"]) for a in mine]
        actions.append(Generate((last + 1,), _chat(first, turns), (("candidate", c), ("round", len(mine)))))
    if checks:
        actions.append(Check(tuple(checks)))
    if actions:
        return actions
    return _pick(settings, rows, [], candidates=finals)
