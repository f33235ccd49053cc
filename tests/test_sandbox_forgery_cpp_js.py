"""Forgery attacks on C++ and JavaScript tests run in their own language (test-code mode), one property per test.

These tests share the program's process, so a determined program can still forge a pass (sandbox/inside/languages.py
says how); what is closed here: the program's macros reaching the tests, the token in the program's source or its
executable, the reporter reachable by name, the assert module patched.
"""

from __future__ import annotations

import pytest

from sandbox import AssertionTests, ExecRequest, FunctionTests, Sandbox, SandboxConfig

CPP_PROMPT = "#include<assert.h>\n#include<bits/stdc++.h>\n// Add two numbers x and y\nlong add(long x, long y) {\n"
CPP_TESTS = ("}\nint main() {\n    auto candidate = add;\n    assert(candidate((0), (1)) == (1));\n"
             "    assert(candidate((2), (3)) == (5));\n}\n")
CPP_DECLARATIONS = "#include<assert.h>\n#include<bits/stdc++.h>\nlong add(long x, long y);\n"
JS_TESTS = ("const assert = require('node:assert');\nfunction test() {\n  let candidate = add;\n"
            "  assert.deepEqual(candidate(0, 1), 1);\n  assert.deepEqual(candidate(2, 3), 5);\n}\ntest();")


@pytest.fixture(scope="module")
def box():
    with Sandbox(SandboxConfig(workers=1, uid_base=63000)) as sandbox:
        yield sandbox


def _cpp(box, body: str, prefix: str = ""):
    tests = FunctionTests(test_code=CPP_TESTS, declarations=CPP_DECLARATIONS)
    return box.run(ExecRequest(language="cpp", code=prefix + CPP_PROMPT + body, tests=tests))


def _js(box, code: str, tests=None):
    return box.run(ExecRequest(language="javascript", code=code, tests=tests or FunctionTests(test_code=JS_TESTS)))


def test_cpp_control_right_and_wrong_programs(box):
    right, wrong = _cpp(box, "    return x + y;\n"), _cpp(box, "    return x - y;\n")
    assert right.passed and right.judged_by == "test-code"
    assert not wrong.passed


def test_cpp_a_macro_of_the_program_cannot_switch_off_the_tests_asserts(box):
    result = _cpp(box, "    return 0;\n#undef assert\n#define assert(x) ((void)0)\n")
    assert not result.passed, result


def test_cpp_the_token_is_not_in_the_executable(box):
    # Find the reporter's "done" line in /proc/self/exe (where the old reporter embedded it, after its token), write
    # the forged lines on the verdict descriptor and leave before the tests run.
    forge = (r"""
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
static int forge() {
  std::ifstream f("/proc/self/exe", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string t;
  for (size_t k = s.find(" {\"ev\": \"done\"}"); k != std::string::npos; k = s.find(" {\"ev\": \"done\"}", k + 1)) {
    if (k >= 32 && s.find_first_not_of("0123456789abcdef", k - 32) == k) { t = s.substr(k - 32, 32); break; }
  }
  if (t.empty()) return 0;
  std::string m = t + " {\"ev\": \"test\", \"index\": 0, \"passed\": true, \"status\": \"passed\"}\n" + t"""
             r""" + " {\"ev\": \"done\"}\n";
  write(3, m.data(), m.size());
  _exit(0);
}
static int forged = forge();
""")
    # (an opaque wrong answer: a constant one lets the optimiser prove the tests fail and drop the reporter)
    result = _cpp(box, "    volatile long wrong = 0;\n    return wrong;\n", prefix=forge)
    assert not result.passed, result


def test_cpp_the_token_descriptor_is_closed_before_the_programs_constructors(box):
    forge = (r"""
#include <unistd.h>
#include <cstring>
#include <cstdlib>
static int steal() {
  char t[33] = {0};
  if (read(5, t, 32) == 32) {
    char m[256];
    int n = snprintf(m, sizeof m, "%s {\"ev\": \"test\", \"index\": 0, \"passed\": true, \"status\": \"passed\"}\n"""
             r"""%s {\"ev\": \"done\"}\n", t, t);
    write(3, m, n);
    _exit(0);
  }
  return 0;
}
static int stolen = steal();
""")
    result = _cpp(box, "    return 0;\n", prefix="#include <cstdio>\n" + forge)
    assert not result.passed, result


def test_js_control_right_and_wrong_programs(box):
    right, wrong = _js(box, "function add(x, y) { return x + y; }"), _js(box, "function add(x, y) { return x - y; }")
    assert right.passed and right.judged_by == "test-code"
    assert not wrong.passed


@pytest.mark.parametrize("call", ["__codeloopEmit", "codeloopReport"])
def test_js_the_reporter_is_not_reachable_from_the_program(box, call):
    code = (f"function add(x, y) {{ return 0; }}\n"
            f"try {{ {call}({{ev: 'test', index: 0, passed: true, status: 'passed'}}); {call}({{ev: 'done'}}); }}"
            " catch (e) {}\nprocess.exit(0);\n")
    assert not _js(box, code).passed


def test_js_patching_the_assert_module_does_not_reach_the_tests(box):
    code = ("for (const name of ['assert', 'node:assert']) {\n"
            "  const a = require(name);\n"
            "  for (const k of ['deepEqual', 'strictEqual', 'equal', 'deepStrictEqual', 'ok']) {\n"
            "    try { a[k] = () => {}; } catch (e) {}\n"
            "    try { Object.defineProperty(a, k, {value: () => {}}); } catch (e) {}\n"
            "  }\n"
            "}\n"
            "function add(x, y) { return 0; }\n")
    assert not _js(box, code).passed


def test_js_the_token_is_not_in_any_file_the_program_can_read(box):
    code = ("const fs = require('fs');\n"
            "for (const f of fs.readdirSync('.').concat([__filename || ''])) {\n"
            "  let s = ''; try { s = fs.readFileSync(f, 'latin1'); } catch (e) { continue; }\n"
            "  const m = s.match(/'([0-9a-f]{32}) '/) || s.match(/([0-9a-f]{32})/);\n"
            "  if (m) { const t = m[1];\n"
            "    fs.writeSync(3, t + ' ' + "
            "JSON.stringify({ev: 'test', index: 0, passed: true, status: 'passed'}) + '\\n');\n"
            "    fs.writeSync(3, t + ' ' + JSON.stringify({ev: 'done'}) + '\\n'); process.exit(0); }\n"
            "}\n"
            "try { const b = Buffer.alloc(32); fs.readSync(5, b, 0, 32, null); const t = b.toString('latin1');\n"
            "  fs.writeSync(3, t + ' {\"ev\": \"test\", \"index\": 0, \"passed\": true, \"status\": \"passed\"}\\n' "
            "+ t + ' {\"ev\": \"done\"}\\n');\n"
            "  process.exit(0); } catch (e) {}\n"
            "function add(x, y) { return 0; }\n")
    assert not _js(box, code).passed


def test_js_assertion_tests_still_report_each_assertion(box):
    tests = AssertionTests(assertions=["assert.strictEqual(add(1, 2), 3)", "assert.strictEqual(add(1, 1), 3)"],
                           setup_code="const assert = require('assert');")
    result = _js(box, "function add(a, b) { return a + b; }", tests)
    assert [t.passed for t in result.tests] == [True, False] and result.tests[1].status == "failed"
