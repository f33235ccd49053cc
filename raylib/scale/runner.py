"""The Ray shell of the scaling loops: every problem's loop in flight at once over shared engine, sandbox and
verifier actors, each step written to attempts.jsonl as it completes.

    from raylib.scale.runner import run_scaling
    summary = run_scaling(tasks, ScaleSettings(strategy="revision", budget=8), GenerationSettings(), "runs/scale",
                          dataset="humaneval")

One asyncio coroutine per problem asks `raylib.scale.strategies.next_actions` what to do, does it through the actors
and merges what it learns into the problem's rows. Engine actors are threaded: the calls of many problems' loops are
in flight together, and vLLM runs them in one continuous batch (a problem waiting on the sandbox never leaves the
engine idle while other problems have work). A problem's calls always go to the same engine replica (its chat's
prefix stays cached there).

Resuming: attempts.jsonl is appended as steps complete (a row's newest line wins); a re-run with the same output
reads it back and each loop continues from its rows. Answers are seeded per (problem, attempt) (greedy by default
for the sequential loops), and the file is rewritten in problem, then attempt, order when the run ends, so a killed
and resumed run ends with the same files as an uninterrupted one. OUTPUT/scale_identity.json ties the directory to
one dataset, model and strategy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

from raylib.cluster import InfrastructureError
from raylib.files import JsonlStore, claim_output, read_records, write_json
from raylib.generate.engines.actor import EngineActor
from raylib.generate.engines.base import GenerationRequest, SamplingParams
from raylib.generate.settings import GenerationSettings, generation_identity
from raylib.scale.feedback import BINARY, FTTT_FEEDBACK, feedback_text
from raylib.scale.strategies import (
    TTT_STRATEGIES,
    Beam,
    Check,
    Generate,
    Judge,
    Rank,
    Reflect,
    ScaleSettings,
    Train,
    next_actions,
)

__all__ = ["ATTEMPT_FIELDS", "AttemptsFile", "EngineActor", "OpTuneActor", "TTTActor", "hard_subset", "run_scaling"]

log = logging.getLogger(__name__)

# attempts.jsonl's columns, in the order written (any others follow, sorted)
ATTEMPT_FIELDS = ("task_id", "attempt", "candidate", "round", "passed", "status", "solution", "feedback", "tokens",
                  "finish_reason", "error", "key", "score", "public", "selected_for", "trained", "ttt_loss",
                  "reflection", "reflection_finish", "response")
_ENGINE_RETRIES = 3  # rounds an endpoint's retryable failure is asked again before the attempt is recorded as failed


class AttemptsFile(JsonlStore):
    """attempts.jsonl: one row per (task_id, attempt), updated as its attempt is judged, checked and scored."""

    def key_of_row(self, row: dict):
        return row["task_id"], int(row["attempt"])

    def is_done(self, row: dict) -> bool:
        return False  # rows are updated in place (a judged answer, a score): the newest line of a key wins

    def rows_by_task(self) -> dict[str, dict[int, dict]]:
        out: dict[str, dict[int, dict]] = {}
        for (task_id, attempt), line in self.lines.items():
            out.setdefault(task_id, {})[attempt] = json.loads(line)
        return out

    def put(self, row: dict) -> None:
        ordered = {k: row[k] for k in ATTEMPT_FIELDS if k in row}
        ordered.update(sorted((k, v) for k, v in row.items() if k not in ordered))
        self.append([ordered])


class TTTActor:
    """A Ray actor holding one model copy for test-time training (raylib.scale.ttt.TestTimeTrainer): each request's
    key is its problem, whose own adapter it samples with."""

    def __init__(self, config: dict, ttt: dict):
        from raylib.generate.engines.base import EngineConfig
        from raylib.scale.ttt import TestTimeTrainer, TTTSettings

        self.trainer = TestTimeTrainer(EngineConfig.model_validate(config), TTTSettings.model_validate(ttt))

    def can_prefill(self) -> bool:
        return True

    def generate(self, requests):
        return [result for r in requests for result in self.trainer.generate(r.key, [r])]

    def step(self, task_id: str, attempt: int, messages: list[dict], answer: str, feedback: str,
             reflection: str) -> float:
        return self.trainer.step(task_id, attempt, messages, answer, feedback, reflection)

    def reflect(self, requests):
        return self.trainer.reflect(requests)

    def replay(self, task_id: str, steps: list) -> None:
        self.trainer.replay(task_id, steps)

    def forget(self, task_id: str) -> None:
        self.trainer.forget(task_id)


class OpTuneActor:
    """A Ray actor holding one model copy and OpTune's learned optimizer (raylib.scale.optune): after a failure it
    keeps that failure's weight update for the problem; odd attempts sample with it, even ones with the base model."""

    def __init__(self, config: dict, folder: str):
        import threading

        from raylib.generate.engines.base import EngineConfig
        from raylib.generate.engines.hf import HFEngine
        from raylib.scale.optune_train import load_optune

        self.engine = HFEngine(EngineConfig.model_validate({**config, "backend": "hf"}))
        for p in self.engine.model.parameters():
            p.requires_grad_(False)
        self.layers, self.learned = load_optune(folder, self.engine.model)
        self.updates: dict[str, dict] = {}
        self.lock = threading.Lock()  # the edit hooks are on the one shared model

    def can_prefill(self) -> bool:
        return True

    def generate(self, requests):
        from raylib.scale.optune import with_update

        results = []
        with self.lock:
            for r in requests:
                update = self.updates.get(r.key) if r.first_sample % 2 == 1 else None
                with with_update(self.layers, update):
                    results += self.engine.generate([r])
        return results

    def step(self, task_id: str, attempt: int, messages: list[dict], answer: str, feedback: str,
             reflection: str) -> float:
        import torch

        from raylib.scale.optune import encode_failure, failure_update

        ids, labels = encode_failure(self.engine.tokenizer, messages, answer, feedback)
        with self.lock:
            update, nll = failure_update(self.engine.model, self.layers, self.learned, torch.tensor([ids]),
                                         torch.tensor([labels]))
            self.updates[task_id] = {name: delta.detach() for name, delta in update.items()}
        return nll

    def replay(self, task_id: str, steps: list) -> None:
        self.step(task_id, *steps[-1])  # only the latest failure's update is used

    def forget(self, task_id: str) -> None:
        self.updates.pop(task_id, None)


class _Sandbox:
    """A threaded Ray actor holding one sandbox pool (raylib.rerank.verifiers.execution.SandboxRunner)."""

    def __init__(self, execution: dict):
        from raylib.evaluate.stage import ExecutionPool
        from raylib.rerank.verifiers.execution import SandboxRunner

        pool = ExecutionPool.model_validate(execution)
        self.runner = SandboxRunner(pool, pool.sandbox)

    def run(self, requests):
        return self.runner.run(requests)


class _Verifier:
    """A Ray actor holding one verifier; a call scores one problem's candidates."""

    def __init__(self, name: str, settings: dict, sandbox: dict):
        from raylib.rerank.settings import VerifierSettings
        from raylib.rerank.verifiers import make_verifier

        self.verifier = make_verifier(name, VerifierSettings.model_validate(settings), sandbox)

    def score(self, problem: dict, programs: list[str]) -> list:
        from raylib.data.problems import Problem
        from raylib.rerank.base import Candidates

        [scores] = self.verifier.score([Candidates(Problem.model_validate(problem), programs)])
        return [s.value for s in scores]


class _Loops:
    """The driver's side: the actors, the rows, and one coroutine per problem."""

    def __init__(self, tasks, settings: ScaleSettings, generation: GenerationSettings, store: AttemptsFile,
                 engines: list, sandboxes: list, verifier, limits: dict[str, float], memory_mb: int, bar):
        self.tasks, self.settings, self.generation, self.store = tasks, settings, generation, store
        self.engines, self.sandboxes, self.verifier = engines, sandboxes, verifier
        self.limits, self.memory_mb, self.bar = limits, memory_mb, bar
        self.rows = store.rows_by_task()
        self.solved = {t for t, rows in self.rows.items() if any(r.get("passed") for r in rows.values())}
        self.failed: dict[str, str] = {}
        self.fresh_tokens = 0
        # seconds each kind of step took, summed over steps (they overlap across problems: "busy" time, not wall
        # time), and how many: where this run's time went (scale_summary.json's this_run)
        self.busy: Counter = Counter()

    def _route(self, actors: list, task_id: str):
        return actors[sum(task_id.encode()) % len(actors)]

    async def solve(self, task_id: str, turn) -> None:
        from ray.exceptions import RayError

        rows = self.rows.setdefault(task_id, {})
        ttt = self.settings.strategy in TTT_STRATEGIES
        try:
            # a resumed run of an unfinished problem: its adapter (or update) again, step by step
            if ttt and any(r.get("trained") for r in rows.values()) and next_actions(self.settings, turn.messages,
                                                                                       rows):
                steps = [(a, list(turn.messages), rows[a]["response"], self._train_feedback(rows[a]),
                          rows[a].get("reflection", "")) for a in sorted(rows) if rows[a].get("trained")]
                await self._route(self.engines, task_id).replay.remote(task_id, steps)
            while True:
                actions = next_actions(self.settings, turn.messages, rows)
                if not actions:
                    break
                results = await asyncio.gather(*(self._do(task_id, turn, a, rows) for a in actions))
                for updates in results:
                    for row in updates:
                        merged = {**rows.get(row["attempt"], {}), **row}
                        rows[row["attempt"]] = merged
                        self.store.put(merged)
                        if merged.get("passed"):
                            self.solved.add(task_id)
        except (InfrastructureError, RayError) as exc:  # an actor gone past its restarts: the next run finishes it
            self.failed[task_id] = f"{type(exc).__name__}: {exc}"
            log.warning("%s: %s", task_id, exc)
        finally:
            if ttt:
                self._route(self.engines, task_id).forget.remote(task_id)
            self.bar.update(1)
            self.bar.set_postfix(solved=len(self.solved), refresh=False)

    async def _do(self, task_id: str, turn, action, rows: dict[int, dict]) -> list[dict]:
        if isinstance(action, (Generate, Beam)):
            return await self._generate(task_id, turn, action)
        if isinstance(action, Judge):
            return await self._judge(task_id, action, rows)
        if isinstance(action, Check):
            return await self._check(task_id, action, rows)
        if isinstance(action, Rank):
            return await self._rank(task_id, action, rows)
        if isinstance(action, Train):
            return await self._train(task_id, turn, action, rows)
        if isinstance(action, Reflect):
            return await self._reflect(task_id, turn, action, rows)
        raise TypeError(f"unknown action {action!r}")

    # ----------------------------------------------------------------------------------------------- generation

    def _sampling(self, **fields) -> SamplingParams:
        """The strategy's temperature and top-p with the run's max_tokens and seed (and `fields`)."""
        sampling = self.generation.sampling
        return SamplingParams(temperature=self.settings.sampling_temperature, top_p=self.settings.sampling_top_p,
                              max_tokens=sampling.max_tokens, seed=sampling.seed, **fields)

    async def _generate(self, task_id: str, turn, action) -> list[dict]:
        params = self._sampling(n=len(action.attempts), stop=[*self.generation.sampling.stop, *turn.stop])
        request = GenerationRequest(messages=list(action.messages), response_prefix=turn.response_prefix,
                                    params=params, key=task_id, first_sample=action.attempts[0])
        engine = self._route(self.engines, task_id)
        started = time.perf_counter()
        for round_ in range(_ENGINE_RETRIES + 1):
            if isinstance(action, Beam):
                [result] = await engine.beam_search.remote([request], len(action.attempts))
            else:
                [result] = await engine.generate.remote([request])
            if not (result.error and result.retryable) or round_ == _ENGINE_RETRIES:
                break
            await asyncio.sleep(2 ** round_)
        self.busy["generate_s"] += time.perf_counter() - started
        self.busy["generate_calls"] += 1
        fields = dict(getattr(action, "fields", ()))
        rows = []
        for j, attempt in enumerate(action.attempts):
            row = {"task_id": task_id, "attempt": attempt, "candidate": fields.get("candidate", attempt),
                   "round": fields.get("round", 0)}
            if result.error or j >= len(result.outputs):
                error = result.error or f"the engine returned {len(result.outputs)} answers, not {len(action.attempts)}"
                row.update(response="", solution="", key="", error=error, finish_reason="error",
                           tokens={"prompt": result.prompt_tokens, "output": 0})
            else:
                out = result.outputs[j]
                response = (turn.response_prefix if result.prefilled else "") + out.text
                solution = self.tasks.solution(task_id, response)
                row.update(response=response, solution=solution, key=self.tasks.key(task_id, solution), error="",
                           finish_reason=out.finish_reason,
                           tokens={"prompt": result.prompt_tokens, "output": out.tokens})
                self.fresh_tokens += out.tokens
            rows.append(row)
        return rows

    # ----------------------------------------------------------------------------------------------- judging

    async def _sandbox(self, task_id: str, requests: list) -> list:
        if not requests:
            return []
        results = await self._route(self.sandboxes, task_id).run.remote(requests)
        broken = [r for r in results if r.status == "sandbox-error"]
        if broken:
            raise InfrastructureError(f"the sandbox failed ({broken[0].error[:200]}); re-run to finish this problem")
        return results

    async def _judge(self, task_id: str, action: Judge, rows: dict[int, dict]) -> list[dict]:
        picks = dict(action.selected_for)
        updates = []
        for attempt in action.attempts:
            started = time.perf_counter()
            row = rows[attempt]
            update = {"task_id": task_id, "attempt": attempt}
            if attempt in picks:
                update["selected_for"] = list(picks[attempt])
            solution = row.get("solution", "")
            if not solution.strip():
                update.update(passed=False, status="generation-error" if row.get("error") else "no-answer")
            elif self.tasks.kind == "math":
                passed, status = self.tasks.judge(task_id, solution)
                update.update(passed=passed, status=status)
            else:
                request = self.tasks.hidden_request(task_id, solution, self.limits[task_id], self.memory_mb)
                [result] = await self._sandbox(task_id, [request])
                update.update(passed=result.passed, status=result.status)
            if action.feedback is not None and not update["passed"]:
                update["feedback"] = await self._feedback(task_id, solution, action.feedback)
            self.busy["judge_s"] += time.perf_counter() - started
            self.busy["judged"] += 1
            updates.append(update)
        return updates

    async def _shown(self, task_id: str, solution: str):
        """The program on the problem's visible tests (a ShownRun; None when it shows none)."""
        requests = self.tasks.shown_requests(task_id, solution, self.limits[task_id], self.memory_mb)
        return self.tasks.shown_run(task_id, await self._sandbox(task_id, requests))

    async def _feedback(self, task_id: str, solution: str, level: str) -> str:
        if level == "binary" or self.tasks.kind == "math" or not solution.strip():
            return BINARY
        return feedback_text(level, await self._shown(task_id, solution))

    async def _check(self, task_id: str, action: Check, rows: dict[int, dict]) -> list[dict]:
        level = "traceback" if self.settings.feedback == "traceback" else "public-tests"
        updates = []
        for attempt in action.attempts:
            solution = rows[attempt].get("solution", "")
            shown = await self._shown(task_id, solution) if solution.strip() else None
            public = {"passed": shown.passed if shown else 0, "total": len(shown.tests) if shown else 0}
            if not solution.strip() and self.tasks.shows_tests(task_id):
                public["total"] = 1  # no program: a failed check, so the candidate is asked again
            updates.append({"task_id": task_id, "attempt": attempt, "public": public,
                            "feedback": feedback_text(level, shown) if shown else BINARY})
        return updates

    def _train_feedback(self, row: dict) -> str:
        """What an FTTT step learns from: FTTT's own words at the binary level, else the row's feedback."""
        return FTTT_FEEDBACK if self.settings.feedback == "binary" else row["feedback"]

    async def _train(self, task_id: str, turn, action: Train, rows: dict[int, dict]) -> list[dict]:
        updates = []
        for attempt in action.attempts:
            row = rows[attempt]
            update = {"task_id": task_id, "attempt": attempt, "trained": False}
            reflection = row.get("reflection", "")
            usable = row.get("solution", "").strip() and not row.get("error")
            if self.settings.strategy == "fttt+":
                usable = usable and reflection and row.get("reflection_finish") != "length"
            if usable:
                started = time.perf_counter()
                loss = await self._route(self.engines, task_id).step.remote(
                    task_id, attempt, list(turn.messages), row["response"], self._train_feedback(row), reflection)
                update.update(trained=True, ttt_loss=round(loss, 6))
                self.busy["train_s"] += time.perf_counter() - started
                self.busy["train_steps"] += 1
            updates.append(update)
        return updates

    async def _reflect(self, task_id: str, turn, action: Reflect, rows: dict[int, dict]) -> list[dict]:
        from raylib.scale.ttt import REFLECTION_INSTRUCTION

        updates = []
        for attempt in action.attempts:
            row = rows[attempt]
            update = {"task_id": task_id, "attempt": attempt, "reflection": "", "reflection_finish": "skipped"}
            if row.get("solution", "").strip() and row.get("finish_reason") != "length":
                messages = [*turn.messages, {"role": "assistant", "content": row["response"]},
                            {"role": "user", "content": REFLECTION_INSTRUCTION}]
                request = GenerationRequest(messages=messages, params=self._sampling(), key=f"{task_id}:reflection",
                                            first_sample=attempt)
                [result] = await self._route(self.engines, task_id).reflect.remote([request])
                if not result.error and result.outputs:
                    update.update(reflection=result.outputs[0].text.strip(),
                                  reflection_finish=result.outputs[0].finish_reason)
            updates.append(update)
        return updates

    async def _rank(self, task_id: str, action: Rank, rows: dict[int, dict]) -> list[dict]:
        problem = self.tasks.problems[task_id].model_dump(mode="json")
        programs = [rows[a].get("solution", "") for a in action.attempts]
        values = await self.verifier.score.remote(problem, programs)
        return [{"task_id": task_id, "attempt": a, "score": v} for a, v in zip(action.attempts, values, strict=True)]


def _actors(generation: GenerationSettings, execution, settings: ScaleSettings, verifiers, needs_sandbox: bool,
            concurrency: int):
    import ray

    from raylib.cluster import engine_gpus

    options = dict(num_cpus=generation.num_cpus, num_gpus=engine_gpus(generation.engine, generation.num_gpus),
                   max_concurrency=concurrency,
                   max_restarts=generation.max_actor_restarts, max_task_retries=-1)
    engine = generation.engine.model_dump(mode="json")
    if settings.strategy == "optune":
        engines = [ray.remote(OpTuneActor).options(**options).remote(engine, settings.optune)
                   for _ in range(generation.replicas)]
    elif settings.strategy in TTT_STRATEGIES:  # one model copy per actor, problems spread over the replicas
        engines = [ray.remote(TTTActor).options(**options).remote(engine, settings.ttt.model_dump(mode="json"))
                   for _ in range(generation.replicas)]
    else:
        engines = [ray.remote(EngineActor).options(**options).remote(engine) for _ in range(generation.replicas)]
    sandboxes = []
    if needs_sandbox:
        sandbox_cls = ray.remote(_Sandbox)
        from raylib.cluster import cluster_resources

        free = cluster_resources().get("CPU", 1) - generation.num_cpus * generation.replicas
        count = execution.actors or max(1, int(free // execution.workers_per_actor))
        sandboxes = [sandbox_cls.options(num_cpus=execution.workers_per_actor,
                                         max_concurrency=4 * execution.workers_per_actor, max_restarts=4,
                                         max_task_retries=-1).remote(execution.model_dump(mode="json"))
                     for _ in range(count)]
    verifier = None
    if settings.selection and settings.strategy != "self-consistency":
        # no CPUs reserved: it works between the engine's and the sandbox's turns, and a reservation could leave a
        # small cluster with no room for it
        verifier = ray.remote(_Verifier).options(num_cpus=0, max_restarts=4, max_task_retries=-1).remote(
            settings.verifier, verifiers.model_dump(mode="json"), execution.sandbox)
    return engines, sandboxes, verifier


def run_scaling(tasks, settings: ScaleSettings, generation: GenerationSettings, output: str | Path, *, dataset: str,
                execution=None, verifiers=None, time_limits=None, concurrency: int = 256,
                ray_address: str | None = None, progress: bool | TextIO = True) -> dict:
    """Run `settings.strategy` on every problem of `tasks` (raylib.scale.tasks.CodeTasks or MathTasks); writes
    OUTPUT/attempts.jsonl, scale_summary.json, report.md and scaling.png, and returns the summary. Problems whose
    sandbox failed past its retries are left unfinished (`summary["unfinished"]`); a re-run finishes them.

    Raises ValueError when `output` holds a run with other settings."""
    from raylib.console import progress_bar
    from raylib.data.problems import problems_sha
    from raylib.evaluate.limits import TimeLimits
    from raylib.evaluate.stage import ExecutionPool
    from raylib.rerank.settings import VerifierSettings
    from raylib.scale.summary import scale_summary, write_outputs

    execution, verifiers = execution or ExecutionPool(), verifiers or VerifierSettings()
    if tasks.kind == "math":
        settings.check_answers_only()
    output = Path(output)
    order = list(tasks.problems)
    identity = {"dataset": dataset, "problems_sha": _problems_sha(tasks, problems_sha),
                "generation": generation_identity(dataset, "", generation),
                "protocol": getattr(tasks, "protocol", ""), "scale": settings.model_dump(mode="json")}
    changed = claim_output(output / "scale_identity.json", identity)
    if changed:
        raise ValueError(f"{output} holds a scaling run with other settings ({changed}); use another --output")
    started = time.time()
    needs_sandbox = tasks.kind == "code"
    if needs_sandbox:
        used = set(order)
        limits, _ = _limits(tasks, used, output, time_limits or TimeLimits(), execution, ray_address, generation)
    else:
        from raylib.cluster import init_cluster

        init_cluster(ray_address)
        limits = {}
    engines, sandboxes, verifier = _actors(generation, execution, settings, verifiers, needs_sandbox, concurrency)
    import ray

    prefill = ray.get(engines[0].can_prefill.remote())  # returns once the engine is built
    loop_started = time.time()
    if not prefill and hasattr(tasks, "prompt"):  # an endpoint cannot start the answer with the opening fence
        tasks.prompt = tasks.prompt.model_copy(update={"prefill": False})
    store = AttemptsFile(output / "attempts.jsonl")
    try:
        with progress_bar(len(order), f"{settings.strategy} (B={settings.budget})", progress, unit="problem") as bar:
            loops = _Loops(tasks, settings, generation, store, engines, sandboxes, verifier, limits,
                           execution.memory_mb, bar)
            asyncio.run(_solve_all(loops, order, concurrency))
        position = {t: i for i, t in enumerate(order)}
        keys = sorted((k for k in store.lines if k[0] in position), key=lambda k: (position[k[0]], k[1]))
        store.rewrite(keys)
        rows_by_task = {t: [loops.rows[t][a] for a in sorted(loops.rows.get(t, {}))] for t in order}
    finally:
        store.close()
        for actor in [*engines, *sandboxes, *([verifier] if verifier else [])]:
            ray.kill(actor)
    ended = time.time()
    # this run's own work: output tokens per second of the loops once the engines were up (engine start-up and
    # reference timing excluded, as a throughput measure should)
    this_run = {"seconds": round(ended - started, 2), "loop_seconds": round(ended - loop_started, 2),
                "output_tokens": loops.fresh_tokens,
                "tokens_per_second": round(loops.fresh_tokens / max(1e-9, ended - loop_started), 2),
                "busy": {k: round(v, 3) for k, v in sorted(loops.busy.items())}}
    summary = scale_summary(settings, rows_by_task, dataset=dataset, model=generation.engine.model,
                            tokens={"this_run": this_run})
    summary["unfinished"] = sorted(loops.failed)
    write_outputs(summary, output)
    return summary


async def _solve_all(loops: _Loops, order: list[str], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(task_id: str) -> None:
        async with gate:
            await loops.solve(task_id, loops.tasks.first_turn(task_id))

    await asyncio.gather(*(one(t) for t in order))


def _problems_sha(tasks, problems_sha) -> str:
    if tasks.kind == "code":
        return problems_sha(tasks.problems)
    import hashlib

    text = json.dumps([p.model_dump(mode="json") for p in tasks.problems.values()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _limits(tasks, used, output, time_limits, execution, ray_address, generation):
    from raylib.evaluate.pipeline import time_limits_on_cluster

    reserved = generation.num_cpus * generation.replicas
    return time_limits_on_cluster(tasks.problems, used, output, time_limits, execution, ray_address, reserved, 2,
                                  lambda _: None)


def hard_subset(index: str | Path, tasks, generation: GenerationSettings, *, dataset: str, **run_args) -> list[str]:
    """FTTT's "hard" problems: those the model fails greedily (one answer, temperature 0), computed once and saved in
    `index` ({"dataset", "model", "protocol", "problems", "hard"}); a later call with the same index reads it back.
    The greedy pass itself is a resumable scaling run in INDEX's folder (<index stem>.greedy/). ValueError when the
    index was made for another dataset, model or protocol."""
    index = Path(index)
    identity = {"dataset": dataset, "model": generation.engine.model, "protocol": getattr(tasks, "protocol", "")}
    if index.exists():
        saved = json.loads(index.read_text())
        changed = [k for k in identity if saved.get(k) != identity[k]]
        if changed:
            raise ValueError(f"the hard-subset index {index} was made with another {', '.join(changed)} "
                             f"({', '.join(f'{k}={saved.get(k)!r}' for k in changed)}); name another file")
        missing = sorted(set(tasks.problems) - set(saved["problems"]))
        if not missing:
            return [t for t in saved["hard"] if t in tasks.problems]
    greedy = generation.model_copy(deep=True)
    greedy.sampling.temperature = 0.0
    summary_dir = index.with_name(index.stem + ".greedy")
    run_scaling(tasks, ScaleSettings(strategy="revision", budget=1), greedy, summary_dir, dataset=dataset,
                **run_args)
    passed = {row["task_id"] for _, row in read_records(summary_dir / "attempts.jsonl") if row.get("passed")}
    hard = [t for t in tasks.problems if t not in passed]
    write_json(index, {**identity, "problems": list(tasks.problems), "hard": hard})
    return hard
