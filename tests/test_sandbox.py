"""The sandbox's behaviour: languages, the three test styles, limits, verdict forgery, bad input."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandbox import (
    AssertionTests,
    ExecRequest,
    FunctionTests,
    Limits,
    Sandbox,
    SandboxConfig,
    StdioCase,
    StdioTests,
    detect_isolation,
)
from sandbox.judge.compare import outputs_match

ADD_TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=2, uid_base=62000)) as sandbox:
        yield sandbox


def _fn(code: str, test: str = ADD_TEST, entry: str = "add", **kw) -> ExecRequest:
    return ExecRequest(language="python", code=code, tests=FunctionTests(test_code=test, entry_point=entry), **kw)


# ------------------------------------------------------------------------------------------------ isolation


def test_isolation_is_detected_and_reported():
    report = detect_isolation()
    assert report.backend == "bwrap" and report.namespaces
    assert report.level in ("full", "partial")
    assert "bwrap" in report.describe()


def test_sandbox_refuses_to_run_unisolated_without_the_unsafe_option():
    from sandbox import IsolationError

    with pytest.raises(IsolationError, match="unsafe_allow_unisolated"):
        Sandbox(SandboxConfig(backend="unsafe-process", workers=1))


def test_unsafe_backend_runs_when_explicitly_allowed():
    with pytest.warns(RuntimeWarning, match="WITHOUT isolation"):
        box = Sandbox(SandboxConfig(backend="unsafe-process", workers=1, unsafe_allow_unisolated=True, uid_base=62500))
    with box:
        result = box.run(_fn("def add(a, b):\n    return a + b\n"))
    assert result.status == "passed" and result.isolation.startswith("unsafe-process")


# ------------------------------------------------------------------------------------------------ python


def test_function_tests_pass_and_fail(box):
    good = box.run(_fn("def add(a, b):\n    return a + b\n"))
    bad = box.run(_fn("def add(a, b):\n    return a - b\n"))
    assert good.status == "passed" and good.passed and good.tests[0].passed
    assert bad.status == "failed" and not bad.passed
    assert "AssertionError" in bad.tests[0].error and "tests.py:2" in bad.tests[0].error


def test_runtime_error_and_syntax_error_are_reported(box):
    crash = box.run(_fn("def add(a, b):\n    return a / 0\n"))
    syntax = box.run(_fn("def add(a, b)\n    return a\n"))
    assert crash.status == "runtime-error" and "ZeroDivisionError" in crash.error
    assert syntax.status == "compile-error" and "SyntaxError" in syntax.error


def test_assertion_list_gives_one_verdict_per_assertion(box):
    tests = AssertionTests(assertions=["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(0, 0) == 0"])
    result = box.run(ExecRequest(language="python", code="def add(a, b):\n    return a + b\n", tests=tests))
    assert [t.passed for t in result.tests] == [True, False, True]
    assert result.status == "failed"


def test_assertion_setup_code_runs_first(box):
    tests = AssertionTests(setup_code="BASE = 10", assertions=["assert add(BASE, 1) == 11"])
    result = box.run(ExecRequest(language="python", code="def add(a, b):\n    return a + b\n", tests=tests))
    assert result.status == "passed"


def test_stdio_cases_compare_whitespace_and_floats(box):
    code = "a, b = map(float, input().split())\nprint(f'{a / b:.9f}  ')\nprint()\n"
    tests = StdioTests(cases=[StdioCase(input="1 3\n", output="0.333333333"), StdioCase(input="1 4", output="0.25\n"),
                              StdioCase(input="1 2", output="0.6")])
    result = box.run(ExecRequest(language="python", code=code, tests=tests))
    assert [t.status for t in result.tests] == ["passed", "passed", "failed"]
    assert result.tests[2].expected == "0.6" and result.tests[2].actual.startswith("0.5")


def test_stdio_stop_on_first_failure_skips_the_rest(box):
    tests = StdioTests(cases=[StdioCase(input="1", output="2"), StdioCase(input="2", output="3")],
                       stop_on_first_failure=True)
    result = box.run(ExecRequest(language="python", code="print(int(input()))", tests=tests))
    assert [t.status for t in result.tests] == ["failed", "skipped"]


def test_stdio_program_that_crashes_is_a_runtime_error(box):
    tests = StdioTests(cases=[StdioCase(input="", output="1")])
    result = box.run(ExecRequest(language="python", code="raise ValueError('boom')", tests=tests))
    assert result.status == "runtime-error" and "boom" in result.tests[0].error


def test_stdio_main_guard_runs(box):
    code = "def main():\n    print(input()[::-1])\n\nif __name__ == '__main__':\n    main()\n"
    result = box.run(ExecRequest(language="python", code=code,
                                 tests=StdioTests(cases=[StdioCase(input="abc", output="cba")])))
    assert result.status == "passed"


def test_stdio_program_with_a_syntax_error_reports_it(box):
    request = ExecRequest(language="python", code="print(1\n",
                          tests=StdioTests(cases=[StdioCase(input="", output="1")]))
    result = box.run(request)
    assert result.status == "runtime-error" and "SyntaxError" in result.tests[0].error, result


def test_plain_run_captures_stdout_stderr_and_exit_code(box):
    result = box.run(ExecRequest(language="python",
                                 code="import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"))
    assert (result.status, result.exit_code, result.stdout, result.stderr) == ("runtime-error", 3, "out\n", "err\n")


def test_output_is_bounded_and_marked_truncated(box):
    result = box.run(ExecRequest(language="python", code="print('x' * 5000)", limits=Limits(output_bytes=100)))
    assert result.status == "passed" and result.truncated and len(result.stdout) == 100


def test_non_utf8_output_is_replaced_not_fatal(box):
    result = box.run(ExecRequest(language="python", code="import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end')\n"))
    assert result.status == "passed" and result.stdout.startswith("ok ") and result.stdout.endswith(" end")
    assert "\ufffd" in result.stdout


def test_batch_runs_in_order(box):
    requests = [_fn(f"def add(a, b):\n    return a + b + {i % 2}\n") for i in range(20)]
    results = box.run_batch(requests)
    assert [r.passed for r in results] == [i % 2 == 0 for i in range(20)]


def test_module_level_entry_point_uses_the_default_sandbox():
    import sandbox

    result = sandbox.run(ExecRequest(language="python", code="print(6 * 7)"))
    assert result.stdout == "42\n"
    assert [r.stdout for r in sandbox.run_batch([{"language": "python", "code": "print(1)"}])] == ["1\n"]


# ------------------------------------------------------------------------------------------------ C++ and JS


def test_cpp_stdio_and_compile_error(box):
    code = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n"
    ok = box.run(ExecRequest(language="cpp", code=code, tests=StdioTests(cases=[StdioCase(input="2 3", output="5")]))) 
    broken = box.run(ExecRequest(language="c++", code="int main( {",
                                 tests=StdioTests(cases=[StdioCase(input="", output="")])))
    assert ok.status == "passed"
    assert broken.status == "compile-error" and "error" in broken.error


def test_cpp_function_tests_need_the_test_main_to_finish(box):
    code = "#include <cstdlib>\nint add(int a, int b) { return a + b; }\n"
    test = "#include <cassert>\nint main() { assert(add(1, 2) == 3); return 0; }\n"
    good = box.run(ExecRequest(language="cpp", code=code, tests=FunctionTests(test_code=test)))
    cheat = box.run(ExecRequest(language="cpp", code=code.replace("return a + b;", "exit(0);"),
                                tests=FunctionTests(test_code=test)))
    assert good.status == "passed"
    assert cheat.status == "runtime-error" and not cheat.passed


def test_javascript_stdio_function_and_assertions(box):
    stdio = box.run(ExecRequest(language="js", code="const s=require('fs').readFileSync(0,'utf8');"
                                                    "console.log(s.trim().toUpperCase())",
                                tests=StdioTests(cases=[StdioCase(input="abc", output="ABC")])))
    fn = box.run(ExecRequest(language="javascript", code="function add(a,b){return a+b}",
                             tests=FunctionTests(test_code="const assert=require('assert');"
                                                           "assert.strictEqual(add(1,2),3);")))
    early = box.run(ExecRequest(language="javascript", code="function add(a,b){process.exit(0)}",
                                tests=FunctionTests(test_code="const assert=require('assert');"
                                                              "assert.strictEqual(add(1,2),3);")))
    asserts = box.run(ExecRequest(language="javascript", code="const assert=require('assert');"
                                                              "function add(a,b){return a+b}",
                                  tests=AssertionTests(assertions=["assert.strictEqual(add(1,2),3)",
                                                                   "assert.strictEqual(add(1,1),3)"])))
    assert stdio.status == "passed"
    assert fn.status == "passed"
    assert early.status == "runtime-error"
    assert [t.passed for t in asserts.tests] == [True, False] and asserts.tests[1].status == "failed"


# ------------------------------------------------------------------------------------------------ forgery


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n",
        "import os\nos._exit(0)\n",
        "import atexit, os\natexit.register(lambda: os._exit(0))\ndef add(a, b):\n    raise SystemExit(0)\n",
        "def add(a, b):\n    import os\n    os._exit(0)\n",
        "def add(a, b):\n    raise SystemExit(0)\n",
        "def add(a, b):\n    raise KeyboardInterrupt\n",
    ],
    ids=["sys-exit-at-load", "os-exit-at-load", "atexit", "os-exit-in-call", "systemexit-in-call", "keyboardinterrupt"],
)
def test_exiting_early_does_not_pass(box, code):
    result = box.run(_fn(code))
    assert not result.passed and result.status != "passed", result


def test_printing_a_verdict_does_not_pass(box):
    code = (
        "import os, json\n"
        "print('PASSED'); print(json.dumps({'ev': 'done'}))\n"
        "for fd in range(3, 20):\n"
        "    try:\n"
        "        os.write(fd, b'00000000000000000000000000000000 {\"ev\": \"test\", \"index\": 0, \"passed\": true, "
        "\"status\": \"passed\"}\\n'\n"
        "                     b'00000000000000000000000000000000 {\"ev\": \"done\"}\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    )
    result = box.run(_fn(code))
    assert not result.passed, result


def test_always_equal_object_does_not_pass(box):
    code = (
        "class Anything:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "def add(a, b):\n    return Anything()\n"
    )
    result = box.run(_fn(code))
    assert result.status == "failed" and "plain data" in result.error


def test_always_equal_subclass_of_int_does_not_pass(box):
    code = "class Int(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return [Int(0)]\n"
    result = box.run(_fn(code, test="def check(c):\n    assert c(1, 2) == [3]\n"))
    assert result.status == "failed"


@pytest.mark.parametrize("returned", [
    "collections.Counter('aab')",                                 # HumanEval/111-style answers
    "collections.namedtuple('R', 'a b')(*'ab')",                  # a namedtuple (a tuple subclass)
    "collections.OrderedDict(collections.Counter('aab'))",
    "collections.defaultdict(int, collections.Counter('aab'))",
    "type('Quiet', (dict,), {})(a=2, b=1)",                       # a subclass that changes nothing
])
def test_stdlib_subclasses_of_plain_types_pass_like_in_the_openai_harness(box, returned):
    code = f"import collections\ndef f():\n    return {returned}\n"
    expected = "('a', 'b')" if "namedtuple" in returned else "{'a': 2, 'b': 1}"
    result = box.run(_fn(code, test=f"def check(c):\n    assert c() == {expected}\n", entry="f"))
    assert result.passed, result


@pytest.mark.parametrize("code", [
    # a list subclass whose __iter__ lies to `sorted`
    "class L(list):\n    def __iter__(self):\n        return iter([1, 2, 3])\ndef f():\n    return L([9])\n",
    # a namedtuple subclass that always compares equal
    "import collections\nclass R(collections.namedtuple('R', 'a')):\n    def __eq__(self, o):\n        return True\n"
    "    __hash__ = tuple.__hash__\ndef f():\n    return R(0)\n",
    # Counter patched by the program to always compare equal
    "import collections\ncollections.Counter.__eq__ = lambda s, o: True\ndef f():\n"
    "    return collections.Counter('zz')\n",
    # a dict subclass whose keys() lies
    "class D(dict):\n    def keys(self):\n        return [1, 2, 3]\ndef f():\n    return D(z=0)\n",
])
def test_subclasses_that_change_comparison_or_contents_do_not_pass(box, code):
    test = "def check(c):\n    r = c()\n    assert sorted(r) == [1, 2, 3] or r == (1, 2, 3) or r == {'a': 1}\n"
    result = box.run(_fn(code, test=test, entry="f"))
    assert result.status == "failed" and "plain data" in result.error, result


def test_strict_return_types_can_be_turned_off(box):
    code = "import fractions\ndef add(a, b):\n    return fractions.Fraction(a) + b\n"
    strict = box.run(_fn(code))
    relaxed = box.run(ExecRequest(language="python", code=code,
                                  tests=FunctionTests(test_code=ADD_TEST, entry_point="add",
                                                      strict_return_types=False)))
    assert strict.status == "failed" and relaxed.status == "passed"


def test_patching_builtins_does_not_reach_the_tests(box):
    code = "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.len = lambda x: 0\ndef add(a, b):\n    return 0.5\n"
    test = "def check(c):\n    assert abs(c(1, 2) - 3) < 1e-6\n"
    result = box.run(_fn(code, test=test))
    assert result.status == "failed"


ALWAYS_EQUAL = (
    "class Anything:\n"
    "    def __eq__(self, other):\n        return True\n"
    "    def __ne__(self, other):\n        return False\n"
)


def test_patching_builtins_does_not_switch_off_the_plain_data_check(box):
    # A replaced `set` whose `in` always answers True would make the check skip the returned list.
    code = ALWAYS_EQUAL + (
        "import builtins\n"
        "class AlwaysSeen:\n"
        "    def __init__(self, *a): pass\n"
        "    def add(self, x): pass\n"
        "    def __contains__(self, x): return True\n"
        "def add(a, b):\n    builtins.set = AlwaysSeen\n    builtins.len = lambda x: 0\n    return [Anything()]\n"
    )
    result = box.run(_fn(code, test="def check(c):\n    assert c(1, 2) == [3]\n"))
    assert result.status == "failed" and "plain data" in result.error, result


def test_patching_the_json_module_does_not_forge_verdict_events(box):
    code = (
        "import json.encoder as E\n"
        "real = E.JSONEncoder.encode\n"
        "def forged(self, o):\n"
        "    if isinstance(o, dict) and o.get('ev') == 'test':\n"
        "        o = dict(o, passed=True, status='passed')\n"
        "    return real(self, o)\n"
        "E.JSONEncoder.encode = forged\n"
        "def add(a, b):\n    return 0\n"
    )
    result = box.run(_fn(code))
    assert result.status == "failed" and not result.tests[0].passed, result


@pytest.mark.parametrize(
    "code",
    [
        ALWAYS_EQUAL + "exec('def add(a, b):\\n    return Anything()\\n')\n",
        ALWAYS_EQUAL + "add = lambda a, b: Anything()\n",
        ALWAYS_EQUAL + "class Adder:\n    def __call__(self, a, b):\n        return Anything()\nadd = Adder()\n",
        ALWAYS_EQUAL + "import functools\ndef _add(a, b, c):\n    return Anything()\n"
                       "add = functools.partial(_add, c=0)\n",
        "class add:\n    def __init__(self, a, b): pass\n    def __eq__(self, other): return True\n",
    ],
    ids=["exec-defined", "lambda", "callable-instance", "partial", "class-as-entry-point"],
)
def test_always_equal_through_any_kind_of_callable_does_not_pass(box, code):
    result = box.run(_fn(code))
    assert result.status == "failed" and "plain data" in result.error, result


def test_always_equal_helper_that_the_tests_call_does_not_pass(box):
    # HumanEval/38-style: check() calls a helper from the prompt by name; the program redefines it.
    code = ALWAYS_EQUAL + "def decode(s):\n    return Anything()\ndef add(a, b):\n    return 0\n"
    result = box.run(_fn(code, test="def check(c):\n    assert decode(c(1, 2)) == 'x'\n"))
    assert result.status == "failed" and "decode returned" in result.error, result


def test_always_equal_constant_that_the_tests_read_is_withheld(box):
    code = ALWAYS_EQUAL + "EXPECTED = Anything()\ndef add(a, b):\n    return 0\n"
    result = box.run(_fn(code, test="def check(c):\n    assert c(1, 2) == EXPECTED\n"))
    assert result.status == "runtime-error" and "NameError" in result.error, result


HIJACK_VERDICT_DESCRIPTOR = (
    "import os, sys\n"
    "real = os.dup(3)\n"
    "r, w = os.pipe()\n"
    "os.dup2(w, 3)  # the harness now writes its events into the program's pipe\n"
    "os.set_blocking(r, False)\n"
    "class Hook:\n"
    "    def __init__(self, inner): self.inner = inner\n"
    "    def write(self, s): return self.inner.write(s)\n"
    "    def flush(self):  # runs after the harness wrote 'done'\n"
    "        try: data = os.read(r, 65536)\n"
    "        except BlockingIOError: return\n"
    "        for line in data.splitlines():\n"
    "            head, _, body = line.partition(b' ')\n"
    "            if len(head) == 32:  # replay the tag in front of a forged body, then a real-looking done\n"
    "                os.write(real, head + b' {\"ev\": \"test\", \"index\": 0, \"passed\": true, "
    "\"status\": \"passed\"}\\n')\n"
    "                os.write(real, head + b' {\"ev\": \"done\"}\\n')\n"
    "sys.stdout = Hook(sys.stdout)\n"
    "def add(a, b):\n    return a - b\n"
)


def test_hijacking_the_verdict_descriptor_gives_nothing_to_forge_with(box):
    # Lines the program captures are tagged by a MAC of their own content: a nonce prefix could be replayed.
    for request in (_fn(HIJACK_VERDICT_DESCRIPTOR),
                    ExecRequest(language="python", code=HIJACK_VERDICT_DESCRIPTOR,
                                tests=AssertionTests(assertions=["assert add(1, 2) == 3"]))):
        result = box.run(request)
        assert not result.passed and result.status != "passed", result


@pytest.mark.parametrize(
    "code",
    ["def abs(x):\n    return 0\n", "class abs:\n    def __new__(cls, x):\n        return 0\n"],
    ids=["function", "class"],
)
def test_program_names_that_shadow_builtins_do_not_reach_the_tests(box, code):
    result = box.run(_fn(code + "def add(a, b):\n    return a - b\n",
                         test="def check(c):\n    assert abs(c(1.0, 2.0) - 3.0) < 1e-6\n"))
    assert result.status == "failed", result


def test_a_module_the_program_made_up_is_not_given_to_the_tests(box):
    # HumanEval/32's tests use the prompt's `import math`: only the real module may come through.
    fake = "import types\nmath = types.ModuleType('math')\nmath.fabs = lambda x: 0.0\ndef add(a, b):\n    return 0\n"
    real = "import math\ndef add(a, b):\n    return a + b\n"
    test = "def check(c):\n    assert math.fabs(c(1, 2) - 3) < 1e-6\n"
    assert box.run(_fn(fake, test=test)).status == "runtime-error"
    assert box.run(_fn(real, test=test)).status == "passed"


def test_the_worker_module_is_out_of_reach_of_import(box):
    # `import __main__` would give the worker's globals, `import harness` a harness copy: neither is the live one.
    code = (
        "import sys, __main__\n"
        "assert not hasattr(__main__, 'harness') and 'harness' not in sys.modules\n"
        "def add(a, b):\n    return a + b\n"
    )
    assert box.run(_fn(code)).status == "passed"


def test_error_messages_point_at_the_failing_line(box):
    result = box.run(_fn("def add(a, b):\n    x = a + b\n    return x + 1\n"))
    assert result.error == "AssertionError (tests.py:2: assert candidate(1, 2) == 3)", result.error
    result = box.run(_fn("def add(a, b):\n    return a / 0\n"))
    assert result.error == "ZeroDivisionError: division by zero (solution.py:2: return a / 0)", result.error


def test_syntax_errors_name_the_line(box):
    result = box.run(_fn("def add(a, b):\n    return (a +\n"))
    assert result.status == "compile-error"
    assert result.error.startswith("SyntaxError: ") and "(solution.py:2: return (a +)" in result.error, result.error


def test_random_starts_from_the_same_state_on_every_run(box):
    # No reseed from /dev/urandom per forked run: the same program prints the same numbers every time.
    request = ExecRequest(language="python", code="import random\nprint(random.random(), random.randint(0, 10**9))\n")
    outputs = {box.run(request).stdout for _ in range(4)}
    assert len(outputs) == 1 and outputs.pop().strip()


def test_exceptions_swallowed_by_the_program_do_not_hide_failures(box):
    code = "import sys\nsys.excepthook = lambda *a: None\ndef add(a, b):\n    return 0\n"
    assert box.run(_fn(code)).status == "failed"


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"language": "cobol", "code": "x"}, "unknown language"),
        ({"language": "python", "code": "   \n"}, "code is empty"),
        ({"language": "python", "code": "x" * 1_000_001}, "larger than"),
        ({"language": "python", "code": "x", "limits": {"wall_time_s": -1}}, "greater than 0"),
        ({"language": "python", "code": "x", "limits": {"memory_mb": 0}}, "greater than or equal to 16"),
        ({"language": "python", "code": "x", "tests": {"kind": "function", "test_code": "def check(c): pass"}},
         "entry_point"),
        ({"language": "cpp", "code": "x", "tests": {"kind": "assertions", "assertions": ["assert(1)"]}},
         "python and javascript"),
        ({"language": "python", "code": "x", "tests": {"kind": "stdio", "cases": []}}, "at least 1"),
        ({"language": "python", "code": "x", "bogus": 1}, "Extra inputs"),
    ],
)
def test_bad_requests_get_clear_errors(payload, message):
    with pytest.raises(ValidationError, match=message):
        ExecRequest.model_validate(payload)


def test_compare_outputs_by_hand():
    assert outputs_match("1 2\n3\n", "1 2 3")
    assert outputs_match("0.3333333", "0.33333333", 1e-6)
    assert not outputs_match("0.33", "0.34", 1e-6)
    assert outputs_match("1e3", "1000.0", 1e-9)
    assert not outputs_match("abc", "abd")
    assert not outputs_match("1 2", "1 2 3")
    assert outputs_match("nan", "nan", 1e-6) and outputs_match("nan", "nan")  # equal tokens match, as text
    assert not outputs_match("nan", "1.0", 1e-6) and not outputs_match("1.0", "nan", 1e-6)  # nan is no number


def test_programs_can_run_on_another_installed_interpreter():
    from sandbox.isolation import find_interpreter, host_interpreter

    other = find_interpreter("newest")
    if other == host_interpreter():
        pytest.skip("no CPython >= 3.12 installed besides the host interpreter")
    with Sandbox(SandboxConfig(workers=1, python=other.executable, uid_base=62700)) as box:
        result = box.run(ExecRequest(language="python", code="import sys\nprint(sys.version.split()[0])"))
    assert result.stdout.strip() == other.version


def test_an_unusable_interpreter_is_a_clear_error():
    with pytest.raises(ValueError, match="not a runnable CPython"):
        Sandbox(SandboxConfig(workers=1, python="/nonexistent/python3"))


def test_closing_a_sandbox_removes_its_cgroups():
    import os

    box = Sandbox(SandboxConfig(workers=2, uid_base=62800))
    root = box._cgroup_root
    if root is None:
        box.close()
        pytest.skip("no writable memory cgroup on this host")
    assert box.run(ExecRequest(language="python", code="print(1)")).stdout == "1\n"
    assert os.path.isdir(os.path.join(root, "w0"))
    box.close()
    assert not os.path.exists(root)


def test_a_worker_killed_from_outside_is_replaced_and_the_request_retried():
    import os
    import signal

    with Sandbox(SandboxConfig(workers=1, uid_base=62900)) as box:
        assert box.run(ExecRequest(language="python", code="print(1)")).stdout == "1\n"
        os.killpg(box._workers[0].proc.pid, signal.SIGKILL)  # the whole bwrap process group: worker gone
        result = box.run(ExecRequest(language="python", code="print(2)"))
        assert result.status == "passed" and result.stdout == "2\n"  # retried on the restarted worker


def test_pools_without_uid_base_claim_distinct_uid_ranges_and_release_them():
    first, second = Sandbox(SandboxConfig(workers=1)), Sandbox(SandboxConfig(workers=1))
    try:
        assert first.config.uid_base != second.config.uid_base
        assert abs(first.config.uid_base - second.config.uid_base) >= 256  # whole ranges, not neighbouring uids
        freed = second.config.uid_base
    finally:
        first.close()
        second.close()
    # A range is free again once its pool is closed (or its process died): the lowest free one is claimed first.
    third = Sandbox(SandboxConfig(workers=1))
    try:
        assert third.config.uid_base <= freed
        assert (third.run(ExecRequest(language="python", code="import os\nprint(os.getuid())")).stdout.strip()
                == str(third.config.uid_base))
    finally:
        third.close()
