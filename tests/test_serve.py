"""The Serve apps (serve/), driven over real HTTP on 127.0.0.1: a real Serve instance on the shared Ray cluster with
the generator (real vLLM on the tiny model), the verifier (real sandbox; a tiny reward model as Scorer-orm) and the
reranker; the error answers (404, 413, 422, 503) and a replica killed under load."""

from __future__ import annotations

import concurrent.futures
import inspect
import socket
import time

import httpx
import pytest

from raylib.data.problems import load_problems

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ADD = {"dataset": "humaneval", "task_id": "HumanEval/53"}  # add(x, y); docstring: add(2, 3) == 5, add(5, 7) == 12
RIGHT, WRONG, HALF = "    return x + y\n", "    return x - y\n", "    return 5 if x == 2 else 0\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(ray_cluster, tiny_model, tmp_path_factory):
    """The three apps of configs/serve.yaml, on a free port; yields (base URL, orm checkpoint)."""
    from ray import serve

    from serve import generator, rerank, verifier
    from tests.test_rerank_models import train_classifier

    orm = train_classifier(tiny_model, tmp_path_factory.mktemp("orm"), labels=1)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port, "request_timeout_s": 120})
    serve.run(generator.build_app(generator.GeneratorArgs(
        engine={"model": tiny_model, "max_model_len": 512, "cpu_threads": 1}, served_name="tiny",
        prompt={"style": "completion"})), name="generator", route_prefix="/v1")
    serve.run(verifier.build_app(verifier.VerifierArgs(
        verifiers={"public_tests": {"workers_per_actor": 2, "time_limit_s": 3}, "reward_model": {"model": orm}},
        max_body_mb=1)), name="verifier", route_prefix="/verify")
    serve.run(rerank.build_app(rerank.RerankArgs()), name="rerank", route_prefix="/")
    yield f"http://127.0.0.1:{port}", orm
    serve.shutdown()


def post(url: str, body: dict, timeout: float = 120) -> httpx.Response:
    return httpx.post(url, json=body, timeout=timeout)


# ------------------------------------------------------------------------------------------------- generator


def test_the_generator_speaks_the_openai_completions_api(served):
    url, _ = served
    assert httpx.get(url + "/v1/models").json()["data"][0]["id"] == "tiny"
    body = {"model": "tiny", "prompt": ["def add(a, b):", "import os"], "n": 2, "max_tokens": 8, "temperature": 1.0,
            "seed": 7}
    first = post(url + "/v1/completions", body).json()
    assert first["object"] == "text_completion" and [c["index"] for c in first["choices"]] == [0, 1, 2, 3]
    assert all(c["finish_reason"] in ("stop", "length") for c in first["choices"])
    usage = first["usage"]
    assert 0 < usage["completion_tokens"] <= 4 * 8 and usage["total_tokens"] == usage["prompt_tokens"] + \
        usage["completion_tokens"]
    again = post(url + "/v1/completions", body).json()
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in first["choices"]]  # seeded: reproducible


def test_the_generator_answers_chat_completions(served):
    url, _ = served
    answer = post(url + "/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                                 "max_tokens": 4, "n": 3, "temperature": 0}).json()
    assert answer["object"] == "chat.completion" and len(answer["choices"]) == 3
    assert all(c["message"]["role"] == "assistant" for c in answer["choices"])
    assert len({c["message"]["content"] for c in answer["choices"]}) == 1  # greedy: three equal answers


def test_an_unknown_model_is_404_and_streaming_is_refused_by_name(served):
    url, _ = served
    missing = post(url + "/v1/completions", {"model": "gpt-9", "prompt": "x"})
    assert missing.status_code == 404 and "gpt-9" in missing.json()["detail"]
    streamed = post(url + "/v1/completions", {"model": "tiny", "prompt": "x", "stream": True})
    assert streamed.status_code == 422 and streamed.json()["detail"][0]["loc"][-1] == "stream"


def test_a_prompt_longer_than_the_context_is_a_400_naming_it(served):
    url, _ = served
    answer = post(url + "/v1/completions", {"model": "tiny", "prompt": "x = 1\n" * 2000, "max_tokens": 4})
    assert answer.status_code == 400 and "context" in answer.json()["detail"]


# ------------------------------------------------------------------------------------------------- verifier


def test_verify_execute_runs_programs_against_a_problem_by_replay(served):
    url, _ = served
    results = post(url + "/verify/execute", {"problem": ADD, "programs": [RIGHT, WRONG]}).json()["results"]
    assert [r["passed"] for r in results] == [True, False]
    assert all(r["judged_by"] == "replay" and r["tests"] for r in results)


def test_verify_execute_takes_the_sandbox_services_requests(served):
    url, _ = served
    request = {"language": "python", "code": "print(input()[::-1])",
               "tests": {"kind": "stdio", "cases": [{"input": "abc\n", "output": "cba\n"},
                                                    {"input": "xy\n", "output": "xx\n"}]}}
    [result] = post(url + "/verify/execute", {"requests": [request]}).json()["results"]
    assert [t["passed"] for t in result["tests"]] == [True, False] and result["status"] == "failed"


def test_public_tests_score_the_fraction_of_docstring_examples_passed(served):
    url, _ = served
    answer = post(url + "/verify/score", {"problem": ADD, "candidates": [RIGHT, WRONG, HALF],
                                          "verifier": "public-tests"}).json()
    assert [s["value"] for s in answer["scores"]["public-tests"]] == [1.0, 0.0, 0.5]
    assert answer["scores"]["public-tests"][2]["details"]["total"] == 2


def test_orm_scores_through_serve_equal_the_reward_model_in_process(served):
    from raylib.rerank.base import Candidates
    from raylib.rerank.settings import ModelVerifierSettings
    from raylib.rerank.verifiers.models import RewardModel

    url, orm = served
    problem = load_problems("humaneval")["HumanEval/53"]
    answer = post(url + "/verify/score", {"problem": ADD, "candidates": [RIGHT, WRONG], "verifier": "orm"}).json()
    local = RewardModel(ModelVerifierSettings(model=orm))
    [expected] = local.score([Candidates(problem, [problem.prompt + RIGHT, problem.prompt + WRONG])])
    assert [s["value"] for s in answer["scores"]["orm"]] == pytest.approx([s.value for s in expected], abs=1e-5)


def test_concurrent_orm_requests_are_batched_and_each_gets_its_own_scores(served):
    url, _ = served
    bodies = [{"problem": ADD, "candidates": [RIGHT] * (1 + i % 3), "verifier": "orm"} for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda b: post(url + "/verify/score", b).json(), bodies))
    assert [len(a["scores"]["orm"]) for a in answers] == [1 + i % 3 for i in range(12)]
    values = [s["value"] for a in answers for s in a["scores"]["orm"]]
    assert max(values) - min(values) < 1e-5  # the same program scores the same in any batch (padding: float noise)


# ------------------------------------------------------------------------------------------------- rerank


def test_rerank_answers_the_contract_shape_with_the_passing_candidate_first(served):
    url, _ = served
    answer = post(url + "/rerank", {"problem": ADD, "candidates": [WRONG, HALF, RIGHT], "verifier": "public-tests",
                                    "top_k": 2}).json()
    problem = load_problems("humaneval")["HumanEval/53"]
    assert answer["best"] == {"index": 2, "code": problem.prompt + RIGHT, "score": 1.0}
    assert [r["index"] for r in answer["ranked"]] == [2, 1]  # top 2 of scores [0, 0.5, 1]
    assert answer["ranked"][1]["scores"] == {"public-tests": 0.5}
    assert {"score", "total"} <= answer["timings_ms"].keys()


def test_a_chain_breaks_public_test_ties_with_the_reward_model(served):
    url, _ = served
    candidates = [WRONG, RIGHT, "    return y + x\n"]
    answer = post(url + "/rerank", {"problem": ADD, "candidates": candidates, "verifier": "public-tests,orm"}).json()
    scores = {r["index"]: r["scores"] for r in answer["ranked"]}
    assert scores[0]["public-tests"] == 0.0 and scores[1]["public-tests"] == scores[2]["public-tests"] == 1.0
    better = max((1, 2), key=lambda i: (scores[i]["orm"], -i))
    assert answer["best"]["index"] == better and answer["ranked"][-1]["index"] == 0


def test_whole_programs_and_completions_are_both_candidates(served):
    url, _ = served
    problem = load_problems("humaneval")["HumanEval/53"]
    whole = "def add(x, y):\n    return x + y\n"
    answer = post(url + "/rerank", {"problem": ADD, "candidates": [WRONG, whole]}).json()
    assert answer["best"] == {"index": 1, "code": whole, "score": 1.0}
    assert answer["ranked"][1]["code"] == problem.prompt + WRONG


def test_rerank_without_candidates_samples_them_with_the_generator(served):
    url, _ = served
    answer = post(url + "/rerank", {"problem": ADD, "n": 3, "max_tokens": 16, "temperature": 1.0}).json()
    assert answer["generated"] + len(answer["generation_errors"]) == 3 and len(answer["ranked"]) == answer["generated"]
    assert {"generate", "score", "total"} <= answer["timings_ms"].keys()
    assert all(r["code"].startswith(load_problems("humaneval")["HumanEval/53"].prompt) for r in answer["ranked"])


def test_an_inline_problem_is_checked_against_its_docstring_examples(served):
    url, _ = served
    prompt = 'def double(n):\n    """Twice n.\n    >>> double(2)\n    4\n    >>> double(0)\n    0\n    """\n'
    answer = post(url + "/rerank", {"problem": {"prompt": prompt, "entry_point": "double"},
                                    "candidates": ["    return n + 2\n", "    return 2 * n\n"]}).json()
    assert answer["best"]["index"] == 1 and answer["ranked"][1]["score"] == 0.5


# ------------------------------------------------------------------------------------------------- errors


def test_unknown_datasets_and_tasks_are_404_naming_them(served):
    url, _ = served
    task = post(url + "/rerank", {"problem": {"dataset": "humaneval", "task_id": "HumanEval/999"},
                                  "candidates": [RIGHT]})
    assert task.status_code == 404 and "HumanEval/999" in task.json()["detail"]
    dataset = post(url + "/verify/score", {"problem": {"dataset": "nope", "task_id": "x"}, "candidates": [RIGHT]})
    assert dataset.status_code == 404 and "'nope'" in dataset.json()["detail"]


def test_a_malformed_body_is_422_naming_the_field(served):
    url, _ = served
    answer = post(url + "/rerank", {"problem": ADD, "candidates": "    return 1\n"})
    assert answer.status_code == 422 and any(e["loc"][-1] == "candidates" for e in answer.json()["detail"])
    unknown = post(url + "/verify/score", {"problem": ADD, "candidates": [RIGHT], "verifier": "oracle"})
    assert unknown.status_code == 422 and "oracle" in str(unknown.json()["detail"])
    unserved = post(url + "/verify/score", {"problem": ADD, "candidates": [RIGHT], "verifier": "pairwise"})
    assert unserved.status_code == 422 and "pairwise" in unserved.json()["detail"]


def test_the_verifier_apps_refusals_reach_rerank_clients_unchanged(served):
    url, _ = served
    answer = post(url + "/rerank", {"problem": ADD, "candidates": [RIGHT], "verifier": "pairwise"})
    assert answer.status_code == 422 and "pairwise" in answer.json()["detail"]
    untested = post(url + "/rerank", {"problem": {"prompt": "def f(x):\n    return x\n", "entry_point": "f"},
                                      "candidates": [RIGHT]})
    assert untested.status_code == 422 and "no tests" in untested.json()["detail"]


def test_an_oversized_body_is_413(served):
    url, _ = served
    answer = post(url + "/verify/score", {"problem": ADD, "candidates": ["#" * (2 << 20)]})
    assert answer.status_code == 413


def test_docs_show_every_apps_bodies(served):
    url, _ = served
    assert httpx.get(url + "/docs").status_code == 200
    spec = httpx.get(url + "/openapi.json").json()
    routes = {"/rerank", "/v1/completions", "/v1/chat/completions", "/v1/models", "/verify/score", "/verify/execute"}
    assert routes <= spec["paths"].keys()
    bodies = {"RerankRequest", "RerankResponse", "ScoreRequest", "ScoreResponse", "CompletionRequest"}
    assert bodies <= spec["components"]["schemas"].keys()


def test_over_capacity_is_a_503_not_a_hang(served):
    from ray import serve

    from serve import verifier

    url, _ = served
    args = verifier.VerifierArgs(verifiers={"public_tests": {"workers_per_actor": 1, "time_limit_s": 5}})
    tight = verifier.Verifier.options(max_ongoing_requests=1, max_queued_requests=1,
                                      ray_actor_options={"num_cpus": 0.1})
    serve.run(tight.bind(args.model_dump(mode="json"), {}), name="tight", route_prefix="/tight")
    slow = "    import time\n    time.sleep(1.5)\n    return x + y\n"
    body = {"problem": ADD, "candidates": [slow], "verifier": "public-tests"}
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(url + "/tight/score", body, timeout=60), range(8)))
    codes = sorted(a.status_code for a in answers)
    assert 503 in codes and 200 in codes and set(codes) <= {200, 503}
    assert time.monotonic() - started < 40
    serve.delete("tight")


def test_a_replica_killed_under_load_is_replaced_and_nothing_hangs(served):
    import ray
    from ray import serve

    from serve import verifier

    url, _ = served
    args = verifier.VerifierArgs(verifiers={"public_tests": {"workers_per_actor": 1}})
    pair = verifier.Verifier.options(num_replicas=2, ray_actor_options={"num_cpus": 0.1})
    serve.run(pair.bind(args.model_dump(mode="json"), {}), name="pair", route_prefix="/pair")
    body = {"problem": ADD, "candidates": [RIGHT, WRONG], "verifier": "public-tests"}

    def replicas() -> list[str]:
        return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                      if a["name"].startswith("SERVE_REPLICA::pair#"))

    before = replicas()
    assert len(before) == 2
    done: list[int] = []

    def call(_):
        try:
            answer = post(url + "/pair/score", body, timeout=60)
        except httpx.TimeoutException:
            return "hang"
        done.append(answer.status_code)
        return answer.status_code if answer.status_code == 200 else (answer.status_code, answer.text)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call, i) for i in range(120)]
        while len(done) < 20:
            time.sleep(0.05)
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
        outcomes = [f.result() for f in futures]
    assert "hang" not in outcomes
    errors = [o for o in outcomes if o != 200]
    assert all(code >= 500 and text.strip() for code, text in errors), errors
    assert outcomes.count(200) >= 100
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (len(replicas()) != 2 or replicas() == before):
        time.sleep(0.5)
    assert len(replicas()) == 2 and before[0] not in replicas()
    time.sleep(2)
    after = [post(url + "/pair/score", body, timeout=60).status_code for _ in range(10)]
    assert after == [200] * 10
    serve.delete("pair")


def test_the_serve_config_file_names_every_app_and_deployment():
    """(Its args against the typed builders: tests/test_config.py, with every shipped config.)"""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    with open("configs/serve.yaml") as f:
        config = ServeDeploySchema.model_validate(yaml.safe_load(f))
    assert (config.http_options.host, config.http_options.port) == ("127.0.0.1", 8000)
    routes = {app.name: (app.route_prefix, app.import_path) for app in config.applications}
    assert routes == {"generator": ("/v1", "serve.generator:build_app"),
                      "verifier": ("/verify", "serve.verifier:build_app"), "rerank": ("/", "serve.rerank:build_app")}
    deployments = {app.name: {d.name for d in app.deployments} for app in config.applications}
    assert deployments == {"generator": {"Generator"}, "verifier": {"Verifier"}, "rerank": {"Reranker"}}
    from serve import generator, rerank, verifier

    for module in (generator, rerank, verifier):  # Serve validates args into the model only for a class annotation
        assert isinstance(inspect.signature(module.build_app).parameters["args"].annotation, type)


def test_ray_serve_llm_serves_the_same_model_on_cpu(served, tiny_model):
    """Last in this module: it replaces the generator app (an engine of its own would not fit beside it)."""
    from ray import serve

    from serve import generator

    url, _ = served
    serve.delete("generator")
    args = generator.GeneratorArgs(engine={"model": tiny_model, "max_model_len": 512}, served_name="tiny-llm")
    serve.run(generator.build_llm_app(args), name="llm", route_prefix="/llm")
    answer = post(url + "/llm/v1/completions", {"model": "tiny-llm", "prompt": "def add(a, b):", "max_tokens": 6,
                                                "temperature": 0})
    assert answer.status_code == 200, answer.text
    [choice] = answer.json()["choices"]
    assert choice["text"] and answer.json()["usage"]["completion_tokens"] == 6
    serve.delete("llm")
