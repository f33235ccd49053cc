"""Verifiers that run the candidates in the sandbox, never on the hidden tests: public-tests and clustering.

    from raylib.rerank.verifiers.execution import BehaviourClusters, PublicTests
    verifier = PublicTests(PublicTestsSettings())      # holds a sandbox pool until close()
    verifier.score([Candidates(problem, programs)])    # Score(fraction of visible tests passed, {"passed", "total"})

public-tests runs each candidate on the tests its prompt shows (raylib.rerank.public_tests: HumanEval docstring
examples, MBPP's shown assertion, the public cases of stdin/stdout problems), judged as the hidden tests are (by
replay, outside the program's process, when the problem has a reference solution). clustering (AlphaCode, CodeT)
runs each candidate on inputs (the visible tests' inputs, or inputs from a file, e.g. written by a model) and
scores it by how many candidates produced exactly its outputs. A problem with no visible tests (no inputs) gets
unknown scores (None), which the report counts. A sandbox failure is retried; if it persists the score is unknown
and marked for the next run to produce again.

What these scores can and cannot say: a candidate runs isolated (the sandbox), so it cannot reach another
candidate's run or score. But both verifiers only see what a program answers on the visible inputs, and a program
that knows those answers can simply return them (or, for clustering, print the marked lines the driver would):
the visible tests rank candidates, the hidden tests decide whether the pick passes.
"""

from __future__ import annotations

import json
import logging
from typing import Sequence

from raylib.data.problems import Problem
from raylib.evaluate.requests import build_request
from raylib.rerank.base import RETRY, Candidates, Score
from raylib.rerank.public_tests import public_inputs, public_tests
from raylib.rerank.selection import cluster_scores
from sandbox.schema import INFRA_STATUS, AssertionTests, CallTests, ExecRequest, Limits, StdioTests

__all__ = ["BehaviourClusters", "PublicTests", "SandboxRunner"]

log = logging.getLogger(__name__)

_INFRA_ROUNDS = 3  # runs of a request whose sandbox failed before its score is given up as unknown
_NO_TESTS = {"reason": "the problem shows no tests"}


class SandboxRunner:
    """A sandbox pool of `settings.workers_per_actor` workers whose `run` retries what the infrastructure failed (the
    execution verifiers' base; the scaling loops' judge too)."""

    def __init__(self, settings, sandbox: dict | None):
        from sandbox import SandboxConfig

        self.settings = settings
        # the pool has the workers this actor reserved CPUs for; its uids are its own (a shared uid_base would let one
        # actor's per-uid clean-up reach another's programs)
        fields = {k: v for k, v in (sandbox or {}).items() if k not in ("workers", "uid_base")}
        self.config = SandboxConfig(**fields, workers=settings.workers_per_actor)
        self.box = self._start()

    def _start(self):
        from sandbox import Sandbox

        return Sandbox(self.config)

    def run(self, requests: list[ExecRequest]) -> list:
        """Results in order; requests whose sandbox failed are run again (up to _INFRA_ROUNDS in all, a pool whose
        workers all died is rebuilt); what still fails comes back as sandbox-error results."""
        from sandbox.schema import sandbox_error

        results = [sandbox_error("not run")] * len(requests)
        again = list(range(len(requests)))
        for _ in range(_INFRA_ROUNDS):
            try:
                for i, result in zip(again, self.box.run_batch([requests[i] for i in again])):
                    results[i] = result
            except RuntimeError as exc:  # every worker of the pool died
                log.warning("sandbox pool broke (%s); restarting it", exc)
                self.box.close()
                self.box = self._start()
            again = [i for i, r in enumerate(results) if r.status == INFRA_STATUS]
            if not again:
                break
        return results

    def close(self) -> None:
        self.box.close()


class PublicTests(SandboxRunner):
    """Score = the fraction of the problem's visible tests the candidate passes (details: passed, total, status)."""

    name = "public-tests"

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        out: list[list[Score | None]] = [[None] * len(item.programs) for item in batch]
        requests, where = [], []
        for b, item in enumerate(batch):
            tests = public_tests(item.problem)
            if tests is None:
                out[b] = [Score(None, dict(_NO_TESTS)) for _ in item.programs]
                continue
            visible = item.problem.model_copy(update={"tests": tests})
            for c, program in enumerate(item.programs):
                requests.append(build_request(visible, program, self.settings.time_limit_s, self.settings.memory_mb))
                where.append((b, c, _test_count(tests)))
        for (b, c, shown), result in zip(where, self.run(requests)):
            if result.status == INFRA_STATUS:
                out[b][c] = Score(None, {"status": result.status, "error": result.error[:200], RETRY: True})
                continue
            total = max(shown, len(result.tests))
            passed = sum(1 for t in result.tests if t.passed) if result.tests else int(result.passed) * total
            out[b][c] = Score(passed / total, {"passed": passed, "total": total, "status": result.status})
        return out  # type: ignore[return-value]


def _test_count(tests) -> int:
    if isinstance(tests, AssertionTests):
        return len(tests.assertions)
    if isinstance(tests, StdioTests):
        return len(tests.cases)
    if isinstance(tests, CallTests):
        return len(tests.groups) or 1
    return 1


# Runs the candidate's function on each input and prints one marked line per input: the marker, its index and a hash
# of the answer's repr (or the exception's type). Only marked lines are the candidate's behaviour, so what a program
# prints of its own (a demo at module level) does not split it from its cluster.
_MARK = "\x1ecodeloop-answer\x1e"
_DRIVER = """

def __codeloop_behaviour(calls):
    import hashlib, re, sys
    for index, call in enumerate(calls):
        try:
            answer = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x", repr(eval(call, globals())))
        except BaseException as exc:
            answer = "raised " + type(exc).__name__
        digest = hashlib.sha256(answer.encode("utf-8", "replace")).hexdigest()[:32]
        sys.stdout.write("%s%d %s\\n" % ({mark!r}, index, digest))
        sys.stdout.flush()

__codeloop_behaviour({calls})
"""


class BehaviourClusters(SandboxRunner):
    """Score = the number of candidates whose outputs on the inputs equal this candidate's (details: cluster, the
    cluster's index by size, and how many inputs)."""

    name = "clustering"

    def __init__(self, settings, sandbox: dict | None = None):
        super().__init__(settings, sandbox)
        self.inputs = _read_inputs(settings.inputs) if settings.inputs else {}

    def score(self, batch: Sequence[Candidates]) -> list[list[Score]]:
        plans = []  # per problem: (inputs, [request indices per candidate]) or None
        requests: list[ExecRequest] = []
        for item in batch:
            inputs = self.inputs.get(item.problem.task_id) or public_inputs(item.problem)
            if not inputs:
                plans.append(None)
                continue
            per_candidate = []
            for program in item.programs:
                made = _behaviour_requests(item.problem, program, inputs, self.settings)
                per_candidate.append(list(range(len(requests), len(requests) + len(made))))
                requests.extend(made)
            plans.append((inputs, per_candidate))
        results = self.run(requests)
        out = []
        for item, plan in zip(batch, plans):
            if plan is None:
                out.append([Score(None, dict(_NO_TESTS)) for _ in item.programs])
                continue
            inputs, per_candidate = plan
            marked = _calls_functions(item.problem)
            signatures = [_signature([results[i] for i in indices], marked) for indices in per_candidate]
            sizes = cluster_scores(signatures)
            labels = _cluster_labels(signatures)
            # a sandbox failure changes every cluster of its problem: all of them are scored again by the next run
            retry = {RETRY: True} if None in signatures else {}
            out.append([Score(size, {"cluster": label, "inputs": len(inputs), **retry})
                        for size, label in zip(sizes, labels)])
        return out


def _behaviour_requests(problem: Problem, program: str, inputs: list[str], settings) -> list[ExecRequest]:
    """Python function problems: one run calling the function on every input (call expressions); otherwise one run
    per input fed on stdin."""
    limits = Limits(wall_time_s=settings.time_limit_s, cpu_time_s=settings.time_limit_s, memory_mb=settings.memory_mb)
    if not _calls_functions(problem):
        return [ExecRequest(language=problem.language, code=program, stdin=text, limits=limits) for text in inputs]
    driver = _DRIVER.format(calls=repr(list(inputs)), mark=_MARK)
    return [ExecRequest(language="python", code=program + driver, limits=limits)]


def _calls_functions(problem: Problem) -> bool:
    """Whether a candidate's behaviour is its function's answers on call expressions (a Python function problem:
    the driver prints marked lines), or its stdout on each input (stdin/stdout problems, other languages)."""
    return not isinstance(problem.tests, StdioTests) and problem.language == "python"


def _signature(results: list, marked: bool) -> tuple | None:
    """What a candidate did on the inputs: per run its status and output (the driver's marked lines, or the whole
    stdout whitespace-normalised); a run that did not finish counts by its status alone (how far it got depends on
    the machine's load). None when the sandbox failed (unknown behaviour)."""
    if any(r.status == INFRA_STATUS for r in results):
        return None

    def output(r) -> str:
        if marked:
            # split("\n"), not splitlines(): that one also splits at the marker's \x1e
            return "\n".join(line for line in r.stdout.split("\n") if line.startswith(_MARK))
        return " ".join(r.stdout.split())

    return tuple((r.status, output(r) if r.status not in ("timeout", "memory") else "") for r in results)


def _cluster_labels(signatures: list) -> list[int | None]:
    """Cluster index per candidate, clusters numbered by size (largest first, ties by first member)."""
    members: dict = {}
    for i, sig in enumerate(signatures):
        if sig is not None:
            members.setdefault(sig, []).append(i)
    ranked = sorted(members.values(), key=lambda m: (-len(m), m[0]))
    label = {i: n for n, group in enumerate(ranked) for i in group}
    return [label.get(i) for i in range(len(signatures))]


def _read_inputs(path: str) -> dict[str, list[str]]:
    """{task_id: inputs} from a JSONL file of {"task_id", "inputs": [str, ...]}; DataError names the line."""
    from raylib.files import DataError, read_records

    inputs: dict[str, list[str]] = {}
    for line, row in read_records(path):
        if not isinstance(row.get("task_id"), str):
            raise DataError(path, line, "field 'task_id' must be a string")
        values = row.get("inputs")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise DataError(path, line, f"field 'inputs' must be a list of strings, got {json.dumps(values)[:80]}")
        inputs[row["task_id"]] = values
    return inputs
