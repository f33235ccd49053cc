"""Generation: prompts, seeds, the resumable sample file, the OpenAI-compatible engine against a real local HTTP
server, the transformers engine, and the real vLLM (CPU) engine in Ray actors on a tiny model built in the session."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from raylib.data.problems import load_problems
from raylib.generate.engines import make_engine
from raylib.generate.engines.base import (
    EngineConfig,
    GenerationRequest,
    OpenAISettings,
    SamplingParams,
    derive_seed,
    sample_seed,
    truncate_at_stop,
)
from raylib.generate.loop import pending_requests
from raylib.generate.prompts import PromptSettings, answer_to_sample, build_prompt
from raylib.generate.samples_file import SamplesFile
from raylib.generate.settings import GenerationSettings
from raylib.generate.stage import generation_stage


@pytest.fixture(scope="module")
def humaneval():
    return load_problems("humaneval")


# ------------------------------------------------------------------------------------------------- pure pieces


def test_seeds_are_derived_per_problem_and_sample_and_stable():
    assert derive_seed(0, "HumanEval/0") == derive_seed(0, "HumanEval/0")
    seeds = {derive_seed(0, f"HumanEval/{i}") for i in range(100)}
    assert len(seeds) == 100 and all(0 <= s < 2**30 for s in seeds)
    assert derive_seed(1, "HumanEval/0") != derive_seed(0, "HumanEval/0")
    assert derive_seed(None, "HumanEval/0") is None and sample_seed(None, "HumanEval/0", 3) is None
    # sample 7's seed is the same whether its request started at sample 0 (n=10) or at 5 (a resumed run)
    assert sample_seed(0, "HumanEval/0", 7) == derive_seed(0, "HumanEval/0") + 7
    assert GenerationRequest(key="HumanEval/0", first_sample=5).seed + 2 == sample_seed(0, "HumanEval/0", 7)


def test_stop_sequences_cut_at_the_earliest_one():
    assert truncate_at_stop("abc\ndef x\nclass y", ["\nclass", "\ndef"]) == ("abc", True)
    assert truncate_at_stop("abc", ["\ndef"]) == ("abc", False)


def test_pending_requests_cover_exactly_the_missing_sample_ids(humaneval):
    problems = dict(list(humaneval.items())[:3])
    done = {("HumanEval/0", 0), ("HumanEval/0", 1), ("HumanEval/0", 2), ("HumanEval/1", 1), ("HumanEval/2", 0)}
    assert pending_requests(problems, 3, done) == [
        {"task_id": "HumanEval/1", "first_sample_id": 0, "count": 1},
        {"task_id": "HumanEval/1", "first_sample_id": 2, "count": 1},
        {"task_id": "HumanEval/2", "first_sample_id": 1, "count": 2},
    ]
    assert pending_requests(problems, 3, set()) == [{"task_id": t, "first_sample_id": 0, "count": 3} for t in problems]


def test_instruct_prompts_ask_for_a_code_block_and_answers_become_whole_programs(humaneval):
    problem = humaneval["HumanEval/0"]
    prompt = build_prompt(problem, PromptSettings())
    assert prompt.style == "instruct" and prompt.response_prefix == "```python\n" and prompt.stop == ("\n```",)
    assert "def has_close_elements" in prompt.messages[0]["content"] and "```python" in prompt.messages[0]["content"]
    # the model rewrote the function whole (without the prompt's import): the import is put back
    whole = ("def has_close_elements(numbers, threshold):\n"
             "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")
    sample = answer_to_sample(problem, prompt, whole)
    assert sample["solution"].startswith("from typing import List\n") and whole in sample["solution"]
    # the model wrote only a body: it goes under the prompt
    body = "    return False\n"
    assert answer_to_sample(problem, prompt, body)["solution"] == problem.completion_prefix + body
    # an engine that could not prefill: the fenced block is taken out of the chat answer
    chat = f"Sure!\n```python\n{whole}```\nThis works."
    assert whole in answer_to_sample(problem, prompt, chat, prefilled=False)["solution"]


def test_completion_prompts_continue_the_code_with_codex_stops(humaneval):
    problem = humaneval["HumanEval/0"]
    prompt = build_prompt(problem, PromptSettings(style="completion"))
    assert prompt.text == problem.prompt and "\ndef" in prompt.stop and prompt.messages is None
    assert answer_to_sample(problem, prompt, "    return True\n") == {"completion": "    return True\n"}


def test_problems_without_a_code_prefix_are_asked_instruct_style():
    stdio = load_problems("stdio", "tests/fixtures/codecontests.jsonl")
    problem = next(iter(stdio.values()))
    prompt = build_prompt(problem, PromptSettings(style="completion", system="Be brief."))
    assert prompt.style == "instruct" and "standard input" in prompt.messages[-1]["content"]
    assert prompt.messages[0] == {"role": "system", "content": "Be brief."}
    program = "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"
    assert answer_to_sample(problem, prompt, program)["solution"] == program


def test_samples_file_resumes_after_a_torn_write_and_regenerates_retryable_errors(tmp_path):
    path = tmp_path / "samples.jsonl"
    rows = [{"task_id": "B", "sample_id": 1, "solution": "x"}, {"task_id": "A", "sample_id": 0, "solution": "y"},
            {"task_id": "B", "sample_id": 0, "solution": "", "error": "endpoint down", "retryable": True}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"task_id": "A", "sampl')  # killed mid-write
    store = SamplesFile(path)
    assert store.done == {("B", 1), ("A", 0)}  # the retryable error is to be generated again; the torn line is gone
    assert store.append_lines([json.dumps({"task_id": "B", "sample_id": 0, "solution": "z"}),
                         json.dumps({"task_id": "A", "sample_id": 0, "solution": "again"})]) == 1
    assert store.finalize({"A": 0, "B": 1}) == 3
    final = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["task_id"], r["sample_id"], r["solution"]) for r in final] == [("A", 0, "y"), ("B", 0, "z"),
                                                                               ("B", 1, "x")]


def test_shortcut_flags_set_the_nested_generation_settings():
    from jobs.generate import GenerateConfig
    from raylib.config import load_config

    cfg = load_config(GenerateConfig, ["--model", "/m", "--n", "5", "--temperature", "0.7", "--prompt-style",
                                       "completion", "generation.sampling.top_p=0.9"])
    g = cfg.generation
    assert ((g.engine.model, g.sampling.n, g.sampling.temperature, g.sampling.top_p, g.prompt.style)
            == ("/m", 5, 0.7, 0.9, "completion"))
    from raylib.config import ConfigError

    with pytest.raises(ConfigError, match="backend openai needs model"):
        load_config(GenerateConfig, ["--backend", "openai"])
    with pytest.raises(ConfigError, match="stop sequences must be non-empty"):
        load_config(GenerateConfig, ["generation.sampling.stop=['']"])
    with pytest.raises(ConfigError, match="less than or equal to 10"):  # shortcuts are checked like the fields they set
        load_config(GenerateConfig, ["--temperature", "50"])
    with pytest.raises(ConfigError, match="must contain {prompt}"):
        load_config(GenerateConfig, ["generation.prompt.instruction=Solve it in {language}."])
    with pytest.raises(ConfigError, match="write other braces doubled"):
        load_config(GenerateConfig, ["generation.prompt.instruction=Return {\"code\": ...} for {prompt}"])
    with pytest.raises(ConfigError, match="openai.api=completions takes plain prompts"):
        load_config(GenerateConfig, ["--backend", "openai", "--model", "m", "generation.engine.openai.api=completions"])
    with pytest.raises(ConfigError, match="chat endpoint does not do"):
        load_config(GenerateConfig, ["--backend", "openai", "--model", "m", "--prompt-style", "completion"])
    from jobs.evaluate import EvaluateConfig

    with pytest.raises(ConfigError, match="apply only without --samples"):
        load_config(EvaluateConfig, ["--samples", "s.jsonl", "generation.sampling.top_p=0.5"])


# ------------------------------------------------------------------------------------------------- OpenAI-compatible


class FakeOpenAI(BaseHTTPRequestHandler):
    """A real HTTP server speaking the OpenAI chat/completions wire format, with scripted failures keyed by prompt:
    FLAKY (one 503, then fine), LIMITED (one 429 with Retry-After), BAD (400), DOWN (500 while `down`)."""

    down = True
    seen: dict[str, int] = {}
    in_flight = 0
    max_in_flight = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        cls = type(self)
        with cls.lock:
            cls.seen[text] = cls.seen.get(text, 0) + 1
            attempt = cls.seen[text]
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
        time.sleep(0.05)
        status, payload, headers = self._answer(text, attempt, body)
        # leave the in-flight count before answering: once the client has the answer it may send its next request
        # before this thread would get back here, and that overlap is not the engine's concurrency
        with cls.lock:
            cls.in_flight -= 1
        self._send(status, payload, headers)

    @classmethod
    def _answer(cls, text, attempt, body):
        if ("DOWN" in text and cls.down) or ("FLAKY" in text and attempt == 1):
            return (503 if "FLAKY" in text else 500), {"error": {"message": "overloaded"}}, None
        if "LIMITED" in text and attempt == 1:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}
        if "BAD" in text:
            return 400, {"error": {"message": "prompt is too long for this model"}}, None
        chat = "messages" in body
        choices = [{"index": i, "finish_reason": "stop",
                    **({"message": {"role": "assistant", "content": f"{text}|{i}|{body.get('seed')}"}} if chat
                       else {"text": f"{text}|{i}|{body.get('seed')}"})} for i in range(body["n"])]
        return 200, {"choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": 4 * body["n"]}}, None

    def _send(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def serve_fake_openai():
    """FakeOpenAI on a free local port, its scripted state reset; yields the endpoint's base URL (.../v1)."""
    FakeOpenAI.seen, FakeOpenAI.max_in_flight, FakeOpenAI.down = {}, 0, True
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def openai_server():
    with serve_fake_openai() as url:
        yield url


def test_openai_engine_retries_isolates_errors_and_limits_concurrency(openai_server):
    settings = OpenAISettings(base_url=openai_server, concurrency=3, retries=2, backoff_s=0.01)
    engine = make_engine(EngineConfig(backend="openai", model="m", openai=settings))
    prompts = ["FLAKY", "LIMITED", "BAD", "DOWN"] + [f"ok{i}" for i in range(8)]
    requests = [GenerationRequest(messages=[{"role": "user", "content": p}], params=SamplingParams(n=2, seed=5), key=p)
                for p in prompts]
    results = engine.generate(requests)
    engine.close()
    by_prompt = dict(zip(prompts, results))
    # one HTTP request per sample, sample i seeded with the problem's seed + i (as vLLM's parallel sampling does)
    seed = sample_seed(5, "FLAKY", 0)
    assert [o.text for o in by_prompt["FLAKY"].outputs] == [f"FLAKY|0|{seed}", f"FLAKY|0|{seed + 1}"]
    assert by_prompt["LIMITED"].outputs and FakeOpenAI.seen["LIMITED"] == 3  # 2 samples + 1 retry after the 429
    assert ("HTTP 400" in by_prompt["BAD"].error and "too long" in by_prompt["BAD"].error
            and not by_prompt["BAD"].retryable)
    assert FakeOpenAI.seen["BAD"] == 2  # a 4xx is the request's fault: not retried (once per sample)
    assert "gave up after 3 attempts" in by_prompt["DOWN"].error and by_prompt["DOWN"].retryable
    assert all(len(by_prompt[f"ok{i}"].outputs) == 2 and by_prompt[f"ok{i}"].prompt_tokens == 7 for i in range(8))
    assert by_prompt["ok0"].outputs[0].tokens == 4 and not by_prompt["ok0"].prefilled
    assert 1 < FakeOpenAI.max_in_flight <= 3


def test_openai_completions_api_takes_plain_prompts(openai_server):
    settings = OpenAISettings(base_url=openai_server, api="completions")
    engine = make_engine(EngineConfig(backend="openai", model="m", openai=settings))
    good, chat = engine.generate([GenerationRequest(prompt="def f():", params=SamplingParams(seed=None)),
                                  GenerationRequest(messages=[{"role": "user", "content": "hi"}])])
    engine.close()
    assert good.outputs[0].text == "def f():|0|None"
    assert "completions API takes a plain prompt" in chat.error


# ------------------------------------------------------------------------------------------------- local engines


def test_hf_engine_seeds_stops_and_n(tiny_model):
    engine = make_engine(EngineConfig(backend="hf", model=tiny_model, max_model_len=512))
    params = SamplingParams(n=3, temperature=1.0, max_tokens=24, seed=11)
    first = engine.generate([GenerationRequest(prompt="def add(a, b):", params=params, key="k")])[0]
    again = engine.generate([GenerationRequest(prompt="def add(a, b):", params=params, key="k")])[0]
    assert [o.text for o in first.outputs] == [o.text for o in again.outputs] and len(first.outputs) == 3
    assert len({o.text for o in first.outputs}) > 1  # different samples, not copies
    resumed = engine.generate([GenerationRequest(prompt="def add(a, b):", params=params.model_copy(update={"n": 2}),
                                                 key="k", first_sample=1)])[0]
    assert [o.text for o in resumed.outputs] == [o.text for o in first.outputs[1:]]  # samples 1-2, as in the n=3 run
    text = first.outputs[0].text
    stop = next(text[i:i + 2] for i in range(1, len(text) - 1) if text[i:i + 2].isascii() and text[i:i + 2].strip())
    stopped = engine.generate([GenerationRequest(prompt="def add(a, b):", key="k",
                                                 params=params.model_copy(update={"stop": [stop]}))])[0]
    assert stopped.outputs[0].text == text[:text.find(stop)] and stopped.outputs[0].finish_reason == "stop"
    too_long = engine.generate([GenerationRequest(prompt="x = 1\n" * 400, key="big")])[0]
    assert "leaves no room for an answer" in too_long.error


def stage_rows(problems, settings, requests=None) -> dict[tuple[str, int], dict]:
    """Run the generation stage over `requests` (default: every sample of every problem); {(task_id, sample_id):
    sample row}, checking no key repeats."""
    requests = requests or pending_requests(problems, settings.sampling.n, set())
    rows = {}
    for batch in generation_stage(requests, problems, settings).iter_batches(batch_size=None, batch_format="pyarrow"):
        for line in batch.column("sample").to_pylist():
            row = json.loads(line)
            key = (row["task_id"], row["sample_id"])
            assert key not in rows or rows[key] == row
            rows[key] = row
    return rows


def generate_actor_pids() -> list[int]:
    import psutil

    return sorted(p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"])
                  if "GenerateSamples" in " ".join(p.info["cmdline"] or []))


@pytest.mark.slow
def test_vllm_stage_in_ray_actors_is_reproducible_survives_a_killed_actor_and_honours_stops(ray_cluster, tiny_model,
                                                                                            humaneval):
    problems = dict(list(humaneval.items())[:6])
    big = humaneval["HumanEval/0"].model_copy(update={"task_id": "big", "prompt": "# pad\n" * 600,
                                                      "completion_prefix": "# pad\n" * 600})
    problems["big"] = big
    settings = GenerationSettings.model_validate({
        "engine": {"model": tiny_model, "max_model_len": 1024},
        "sampling": {"n": 3, "temperature": 1.0, "max_tokens": 24, "seed": 3},
        "prompt": {"style": "completion"}, "batch_size": 1,
    })
    # Run 1, batch by batch, with the engine actor killed once the first rows are in.
    requests = pending_requests(problems, 3, set())
    rows, killed = {}, []
    for batch in generation_stage(requests, problems, settings).iter_batches(batch_size=None, batch_format="pyarrow"):
        for line in batch.column("sample").to_pylist():
            row = json.loads(line)
            rows[(row["task_id"], row["sample_id"])] = row
        if not killed:
            killed = generate_actor_pids()
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
    assert killed, "no engine actor process found to kill"
    assert set(rows) == {(t, i) for t in problems for i in range(3)}  # nothing lost, nothing twice
    # the oversized prompt failed only its own rows, with the reason recorded
    assert all(rows[("big", i)]["error"].startswith("ValueError: the prompt has")
               and rows[("big", i)]["finish_reason"] == "error"
               for i in range(3))
    good = [r for k, r in rows.items() if k[0] != "big"]
    assert all(not r["error"] and r["output_tokens"] > 0 and r["finish_reason"] in ("stop", "length") for r in good)
    assert all(r["completion"] == r["raw_output"] for r in good)
    assert len({rows[("HumanEval/0", i)]["completion"] for i in range(3)}) > 1  # n=3 gives different samples

    # Run 2: other batching (all requests in one call), HumanEval/2 asked as a resumed run would (samples 1-2, then
    # sample 0 alone), and a stop sequence taken from run 1's text.
    text = rows[("HumanEval/1", 0)]["completion"]
    stop = next(text[i:i + 2] for i in range(1, len(text) - 1) if text[i:i + 2].isascii() and text[i:i + 2].strip())
    settings2 = settings.model_copy(update={"batch_size": 16,
                                            "sampling": settings.sampling.model_copy(update={"stop": [stop]})})
    resumed = (pending_requests(problems, 3, {("HumanEval/2", 0)})
               + [{"task_id": "HumanEval/2", "first_sample_id": 0, "count": 1}])
    assert {"task_id": "HumanEval/2", "first_sample_id": 1, "count": 2} in resumed
    rows2 = stage_rows(problems, settings2, resumed)
    assert set(rows2) == set(rows)
    for key, row in rows.items():
        if key[0] == "big":
            continue
        expected, cut = truncate_at_stop(row["completion"], [stop])
        assert rows2[key]["completion"] == expected, key  # same seeds, same samples, whatever the batching
        if cut:
            assert rows2[key]["finish_reason"] == "stop"
    assert rows2[("HumanEval/1", 0)]["completion"] == text[:text.find(stop)]


@pytest.mark.gpu
def test_vllm_stage_on_gpu_reserves_a_gpu_per_actor_and_matches_itself(ray_cluster, tiny_model, humaneval):
    """The GPU path (the `vllm` package, float dtype from the model, a GPU reserved per engine actor)."""
    import ray

    if ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("the shared Ray cluster sees no GPU")
    problems = dict(list(humaneval.items())[:4])
    settings = GenerationSettings.model_validate({
        "engine": {"model": tiny_model, "max_model_len": 1024, "gpu_memory_utilization": 0.3},
        "sampling": {"n": 2, "temperature": 1.0, "max_tokens": 16, "seed": 1}, "prompt": {"style": "completion"},
    })
    first, second = stage_rows(problems, settings), stage_rows(problems, settings)
    assert first == second and len(first) == 8 and all(not r["error"] for r in first.values())


def test_cpp_and_javascript_answers_become_programs_that_pass_multipl_e_tests():
    """MultiPL-E prompts end by opening a function: an instruct answer's function body continues the prompt (C++
    tests bring the closing brace themselves), and completion prompts stop at the dataset's own stop tokens."""
    from raylib.evaluate.requests import build_request
    from raylib.generate.prompts import sample_program
    from sandbox import Sandbox, SandboxConfig

    problems = load_problems("multipl-e", "tests/fixtures/multipl-e.jsonl")
    answers = {"cpp": "Here:\n```cpp\n#include <bits/stdc++.h>\nlong add(long x, long y) {\n"
                      "    if (x > 0) { return x + y; }\n"
                      "    return x + y;\n}\n```\nDone.",
               "javascript": "```javascript\nfunction add(x, y) {\n  return x + y;\n}\n```",
               "python": "```python\ndef add(x: int, y: int) -> int:\n    return x + y\n```"}
    programs = {}
    for task_id, problem in problems.items():
        assert build_prompt(problem, PromptSettings(style="completion")).stop == problem.stop
        prompt = build_prompt(problem, PromptSettings())
        programs[task_id] = sample_program(problem, answer_to_sample(problem, prompt, answers[problem.language],
                                                                     prefilled=False))
    assert programs["HumanEval_53_add_cpp"].count("long add(") == 1
    with Sandbox(SandboxConfig(workers=2)) as box:
        results = box.run_batch([build_request(problems[t], program, 10.0, 512) for t, program in programs.items()])
    assert [r.status for r in results] == ["passed"] * len(programs), [(r.status, r.error, r.stderr[-300:])
                                                                        for r in results]
