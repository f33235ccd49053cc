"""Harness agreement for LeetCode-style and call-based problems: codeloop's verdicts vs LiveCodeBench's and TACO's own
graders, program by program.

    .venv/bin/python benchmarks/harness_agreement.py --lcb LIVECODEBENCH_REPO --taco TACO_REPO

`LIVECODEBENCH_REPO` / `TACO_REPO`: checkouts of github.com/LiveCodeBench/LiveCodeBench and github.com/FlagOpen/TACO
(their graders are read from lcb_runner/evaluation/testing_util.py and metrics/testing_util.py; nothing is
downloaded). No LiveCodeBench or TACO data is reachable here: the problems are the LeetCode-style and call-based ones
of tests/fixtures/livecodebench.jsonl and tests/fixtures/taco.jsonl plus a few written below, in the public formats,
and each gets programs chosen to hit the graders' rules: right, wrong, a tuple for a list, nested tuples, a
wrapped or unwrapped answer, bool for int, float rounding, an exception, a function instead of the class, a class
that fails to construct, the harness's imports used without importing them.

Each program is judged twice: by the grader itself, `run_test(sample, test=program)`, in a fresh subprocess of this
venv (the graders disable os functions in their own process); and by codeloop's sandbox
(`build_request(problem, program, 6.0, 1024)`, 6 s per call as LiveCodeBench's default timeout). A program passes
the grader when every case's result is True. Prints each program's two verdicts, the disagreements and the
agreement ratio; exit status 1 when any disagree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_GRADER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
sys.set_int_max_str_digits(0)
request = json.load(sys.stdin)
if sys.argv[2] == "lcb":
    from lcb_runner.evaluation.testing_util import run_test
    results = run_test({"input_output": request["input_output"]}, test=request["program"], timeout=6)
    results = results[0] if isinstance(results, tuple) else results
else:
    import inspect
    inspect.getargspec = inspect.getfullargspec  # TACO's pyext2 needs the alias Python 3.11 removed
    from metrics.testing_util import run_test
    results = run_test({"input_output": request["input_output"]}, test=request["program"])
print("\n@@" + json.dumps([r is True for r in results]))
"""

LCB_EXTRA = [  # (row, programs) in LiveCodeBench's code_generation_lite format
    {"question_id": "x-float", "question_content": "Return the mean.", "platform": "leetcode", "difficulty": "easy",
     "starter_code": "class Solution:\n    def mean(self, nums: List[int]) -> float:\n        ",
     "public_test_cases": json.dumps([{"input": "[1,2]", "output": "1.5", "testtype": "functional"},
                                      {"input": "[1,1,2]", "output": "1.3333333333333333", "testtype": "functional"}]),
     "private_test_cases": "[]", "metadata": json.dumps({"func_name": "mean"})},
    {"question_id": "x-bool", "question_content": "Is n even?", "platform": "leetcode", "difficulty": "easy",
     "starter_code": "class Solution:\n    def isEven(self, n: int) -> bool:\n        ",
     "public_test_cases": json.dumps([{"input": "4", "output": "true", "testtype": "functional"},
                                      {"input": "3", "output": "false", "testtype": "functional"}]),
     "private_test_cases": "[]", "metadata": json.dumps({"func_name": "isEven"})},
]
LCB_PROGRAMS = {
    "1": ["class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        seen = {}\n"
          "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
          "                return [seen[target - x], i]\n            seen[x] = i\n",
          "class Solution:\n    def twoSum(self, nums, target):\n        d = {}\n        for i, x in enumerate(nums):\n"
          "            if target - x in d:\n                return (d[target - x], i)\n            d[x] = i\n",
          "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n",
          "class Solution:\n    def twoSum(self, nums, target):\n        return [[0, 1]]\n",
          "class Solution:\n    def twoSum(self, nums, target):\n        raise ValueError('x')\n",
          "def twoSum(nums, target):\n    return [0, 1]\n",
          "class Solution:\n    def __init__(self):\n        raise RuntimeError('no')\n"
          "    def twoSum(self, nums, target):\n        return [0, 1]\n"],
    "2": ["class Solution:\n    def countWords(self, words: List[str]) -> Dict[str, int]:\n"
          "        return dict(Counter(words))\n",
          "class Solution:\n    def countWords(self, words):\n        return Counter(words)\n",
          "class Solution:\n    def countWords(self, words):\n        return {w: 1 for w in words}\n",
          "class Solution:\n    def countWords(self, words):\n        return list(Counter(words).items())\n"],
    "x-float": ["class Solution:\n    def mean(self, nums):\n        return sum(nums) / len(nums)\n",
                "class Solution:\n    def mean(self, nums):\n        return round(sum(nums) / len(nums), 4)\n",
                "class Solution:\n    def mean(self, nums):\n        return sum(nums) // len(nums)\n"],
    "x-bool": ["class Solution:\n    def isEven(self, n):\n        return n % 2 == 0\n",
               "class Solution:\n    def isEven(self, n):\n        return 1 - n % 2\n",
               "class Solution:\n    def isEven(self, n):\n        return 'true' if n % 2 == 0 else 'false'\n",
               "class Solution:\n    def isEven(self, n):\n        return None\n"],
}
TACO_EXTRA = [
    {"question": "Return the two halves of a list as a pair.", "solutions": "[]", "starter_code": "",
     "input_output": json.dumps({"fn_name": "halves", "inputs": [[[1, 2, 3, 4]], [[5, 6]]],
                                 "outputs": [[[1, 2], [3, 4]], [[5], [6]]]})},
    {"question": "Count characters.", "solutions": "[]", "starter_code": "",
     "input_output": json.dumps({"fn_name": "count", "inputs": [["aab"]], "outputs": [{"a": 2, "b": 1}]})},
]
TACO_PROGRAMS = {
    "taco/2": ["def sum_two(a, b):\n    return a + b\n", "def sum_two(a, b):\n    return [a + b]\n",
               "def sum_two(a, b):\n    return a - b\n", "def sum_two(a, b):\n    return (a + b,)\n",
               "def sum_two(a, b):\n    return float(a + b)\n"],
    "taco/3": ["class Solution:\n    def pairs(self, nums: List[int]) -> List[Tuple[int, int]]:\n"
               "        return sorted(Counter(nums).items())\n",
               "class Solution:\n    def pairs(self, nums):\n"
               "        return [list(p) for p in sorted(Counter(nums).items())]\n",
               "class Solution:\n    def pairs(self, nums):\n        return sorted(Counter(nums))\n",
               "def pairs(nums):\n    return sorted(collections.Counter(nums).items())\n"],
    "taco/4": ["def halves(xs):\n    return [xs[:len(xs) // 2], xs[len(xs) // 2:]]\n",
               "def halves(xs):\n    return (xs[:len(xs) // 2], xs[len(xs) // 2:])\n",
               "def halves(xs):\n    return [xs[len(xs) // 2:], xs[:len(xs) // 2]]\n"],
    "taco/5": ["def count(s):\n    return dict(Counter(s))\n", "def count(s):\n    return {'a': 2, 'b': 1}\n",
               "def count(s):\n    return {ord(c) - 97: n for c, n in Counter(s).items()}\n"],
}


def grader_verdict(kind: str, repo: Path, input_output: str, program: str) -> bool | str:
    """Whether the benchmark's own grader passes `program` (every case True), or the grader's failure text."""
    request = json.dumps({"input_output": input_output, "program": program})
    done = subprocess.run([sys.executable, "-c", _GRADER, str(repo), kind], input=request, capture_output=True,
                          text=True, timeout=120)
    marker = done.stdout.rfind("\n@@")
    if marker < 0:
        return f"grader failed: {done.stderr.strip()[-300:]}"
    results = json.loads(done.stdout[marker + 3:])
    return bool(results) and all(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lcb", type=Path, required=True, help="LiveCodeBench checkout")
    parser.add_argument("--taco", type=Path, required=True, help="TACO checkout")
    args = parser.parse_args(argv)
    from raylib.data.problems import load_problems
    from raylib.evaluate.requests import build_request
    from sandbox import Sandbox, SandboxConfig

    fixtures = ROOT / "tests" / "fixtures"
    with tempfile.TemporaryDirectory() as scratch:
        lcb_file, taco_file = Path(scratch, "lcb.jsonl"), Path(scratch, "taco.jsonl")
        lcb_rows = [json.loads(line) for line in (fixtures / "livecodebench.jsonl").read_text().splitlines()]
        lcb_file.write_text("".join(json.dumps(r) + "\n" for r in lcb_rows + LCB_EXTRA))
        taco_rows = [json.loads(line) for line in (fixtures / "taco.jsonl").read_text().splitlines()]
        taco_file.write_text("".join(json.dumps(r) + "\n" for r in taco_rows + TACO_EXTRA))
        lcb, taco = load_problems("stdio", lcb_file), load_problems("stdio", taco_file)
    cases = []  # (benchmark, task_id, program, the grader's input_output)
    for row in lcb_rows + LCB_EXTRA:
        task = str(row["question_id"])
        if task in LCB_PROGRAMS:
            from raylib.data.problems import _lcb_cases

            tests = _lcb_cases(row["public_test_cases"]) + _lcb_cases(row.get("private_test_cases") or "[]")
            io = json.dumps({"inputs": [t["input"] for t in tests], "outputs": [t["output"] for t in tests],
                             "fn_name": json.loads(row["metadata"])["func_name"]})
            cases += [("livecodebench", task, p, io) for p in LCB_PROGRAMS[task]]
    for index, row in enumerate(taco_rows + TACO_EXTRA, start=1):
        task = f"taco/{index}"
        cases += [("taco", task, p, row["input_output"]) for p in TACO_PROGRAMS.get(task, [])]
    problems = {("livecodebench", t): p for t, p in lcb.items()} | {("taco", t): p for t, p in taco.items()}
    with Sandbox(SandboxConfig(workers=2)) as box:
        ours = box.run_batch([build_request(problems[(b, t)], p, 6.0, 1024) for b, t, p, _ in cases])
    repos = {"livecodebench": ("lcb", args.lcb), "taco": ("taco", args.taco)}
    agree, disagreements = 0, []
    print(f"{'benchmark':<14} {'task':<9} {'harness':<8} {'codeloop':<14} program")
    for (bench, task, program, io), result in zip(cases, ours):
        theirs = grader_verdict(*repos[bench], io, program)
        if isinstance(theirs, str):
            print(f"error: {bench} {task}: {theirs}", file=sys.stderr)
            return 2
        same = theirs == result.passed
        agree += same
        first = program.strip().splitlines()[-1].strip()[:60]
        print(f"{bench:<14} {task:<9} {'pass' if theirs else 'fail':<8} {result.status:<14} {first}"
              + ("" if same else "   <-- DISAGREE"))
        if not same:
            disagreements.append((bench, task, program, theirs, result.status, result.error))
    print(f"\nagreement: {agree}/{len(cases)} = {agree / len(cases):.3f} (programs judged the same by the benchmark's "
          "own grader and by codeloop)")
    for bench, task, program, theirs, status, error in disagreements:
        print(f"\n{bench} {task}: grader {'pass' if theirs else 'fail'}, codeloop {status} ({error[:200]})\n{program}")
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
