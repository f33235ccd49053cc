"""Test-code mode for C++ and JavaScript: the dataset's test code, in its own language, run with the program.

Stdlib only; used by the worker (sandbox/inside/worker.py) to build the files it compiles or runs. The program
passes when the test code completes and reports "done" on the verdict descriptor (3) with the per-run token. The
program and the tests share a process, so a program written against this can forge a pass (results say
`judged_by: "test-code"`). What is closed:
  - the token is never in any file the program can read, nor in the executable: the process reads it from
    descriptor 5 before any of the program's code runs (C++: a .preinit_array entry linked first; JavaScript: the
    tests' module, which loads the program afterwards), then closes the descriptor;
  - C++: the program and the tests are separate translation units, so the program's macros (`#define assert(x)`)
    cannot reach the tests; the tests see only the dataset's declarations (the prompt's includes and signature);
  - JavaScript: the program runs as a script of its own (`vm.runInThisContext`): its functions are globals the tests
    can call, but nothing of the tests' module (the reporter, its `require('node:assert')`) is reachable by name.
What is not: the token in the process's memory (a program that scans its own memory, or opens a `node:inspector`
session, can find it).
"""

from __future__ import annotations

import re

VERDICT_FD, TOKEN_FD = 3, 5
TOKEN_BYTES = 32

_CPP_REPORTER = (r"""
#include <unistd.h>
#include <cstdio>
#include <cstring>
// The run's token: read from descriptor 5 before any constructor of the program runs, then the descriptor is closed.
static char codeloop_token[64];
static void codeloop_read_token(int, char**, char**) {
  ssize_t n = read(5, codeloop_token, 32);
  codeloop_token[n == 32 ? 32 : 0] = 0;
  close(5);
}
__attribute__((section(".preinit_array"), used)) static void (*codeloop_preinit)(int, char**, char**) = """
                 r"""codeloop_read_token;
static int codeloop_report() {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%s {\"ev\": \"test\", \"index\": 0, \"passed\": true, \"status\": \"passed\"}\n"""
                 r"""%s {\"ev\": \"done\"}\n",
                   codeloop_token, codeloop_token);
  return codeloop_token[0] && write(3, msg, n) == n ? 0 : 1;
}
""")


def _split_leading_brace(test_code: str) -> tuple[str, str]:
    """MultiPL-E's C++ tests start with the `}` that closes the program's function: it belongs to the program."""
    stripped = test_code.lstrip()
    if stripped.startswith("}"):
        return "}\n", stripped[1:]
    return "", test_code


def cpp_sources(code: str, test_code: str, declarations: str) -> tuple[str, str]:
    """(the program's translation unit, the tests' translation unit). The tests' `main` is renamed and called by
    ours, which reports "done" if it returns 0; exit()/abort()/a crash in the program or the tests never reaches
    the report. Test mains without a `return` (MultiPL-E, HumanEval-X: asserts, then fall off the end) become `void`
    functions: falling off the end of a renamed `int` function is undefined behaviour."""
    brace, tests = _split_leading_brace(test_code)
    if re.search(r"\breturn\b", tests) or not re.search(r"\bint\s+main\s*\(", tests):
        tests, call = ("\n#define main codeloop_test_main\n" + tests + "\n#undef main\n",
                       "int rc = codeloop_test_main();")
    else:
        tests, call = (re.sub(r"\bint\s+main\s*\(", "void codeloop_test_main(", tests),
                       "codeloop_test_main(); int rc = 0;")
    unit = (declarations + "\n" + tests + "\n" + _CPP_REPORTER
            + f"int main() {{\n  {call}\n  if (rc == 0) return codeloop_report();\n  return rc;\n}}\n")
    return code + "\n" + brace, unit


def cpp_declarations(prompt: str) -> str:
    """What the tests need from a C++ prompt that ends in a function's opening brace: the prompt up to that brace, as
    a declaration (its includes, comments and signature)."""
    head, brace, _ = prompt.rpartition("{")
    return head.rstrip() + ";\n" if brace else ""


def js_sources(code: str, tests: dict) -> tuple[str, str]:
    """(the program's script, the tests' module). The module reads the token, keeps its reporter and the assert
    module to itself, runs the program as a script in the same realm, then the test code."""
    prelude = (
        "const codeloopReport = (() => {\n"
        "  const fs = require('fs');\n"
        f"  const buffer = Buffer.alloc({TOKEN_BYTES});\n"
        f"  const n = fs.readSync({TOKEN_FD}, buffer, 0, {TOKEN_BYTES}, null);\n"
        f"  fs.closeSync({TOKEN_FD});\n"
        f"  const token = n === {TOKEN_BYTES} ? buffer.toString('latin1') : '';\n"
        "  const write = fs.writeSync, stringify = JSON.stringify;\n"
        f"  return (event) => {{ if (token) write({VERDICT_FD}, token + ' ' + stringify(event) + '\\n'); }};\n"
        "})();\n"
        "for (const name of ['assert', 'node:assert']) {  // frozen before the program runs: it cannot patch them\n"
        "  const exported = require(name); Object.freeze(exported); "
        "if (exported.strict) Object.freeze(exported.strict);\n"
        "}\n"
        "globalThis.require = require;  // what a program run as a CommonJS module would have\n"
        "globalThis.module = {exports: {}};\n"
        "globalThis.exports = globalThis.module.exports;\n"
        "require('vm').runInThisContext(require('fs').readFileSync(__dirname + '/solution.js', 'utf8'), "
        "{filename: 'solution.js'});\n"
    )
    if tests["kind"] == "function":
        body = ("{\n" + tests["test_code"] + "\n}\n"
                "codeloopReport({ev: 'test', index: 0, passed: true, status: 'passed'});\n")
    else:
        parts = ["{\n" + tests.get("setup_code", "") + "\n"]
        for index, assertion in enumerate(tests["assertions"]):
            parts.append(
                f"try {{ {assertion}\n;codeloopReport({{ev: 'test', index: {index}, "
                f"passed: true, status: 'passed'}}); }}"
                f" catch (e) {{ codeloopReport({{ev: 'test', index: {index}, passed: false, "
                f"status: (e && e.name === 'AssertionError') ? 'failed' : 'runtime-error', "
                f"error: String(e).slice(0, 2000)}}); }}")
        body = "\n".join(parts) + "\n}\n"
    return code, prelude + body + "codeloopReport({ev: 'done'});\n"
