"""Test-code mode for C++ and JavaScript: the test code joined to the program, run in the candidate's process.

Stdlib only; used by the worker (sandbox/inside/worker.py) to build the source it compiles or runs. The program
passes when the joined test code completes and reports, on the verdict descriptor, the per-run token. A program
written against this can forge a pass: it shares the process with the tests and their token (results say
`judged_by: "test-code"`).
"""

from __future__ import annotations

import re

VERDICT_FD = 3


def cpp_with_tests(code: str, test_code: str, token: str) -> str:
    # The test code's main() is renamed; our main calls it and reports "done" if it returns 0. exit()/abort()/a crash
    # inside the program or tests never reaches the report. Test mains without a `return` (MultiPL-E, HumanEval-X:
    # asserts, then fall off the end) become `void` functions: falling off the end of a renamed `int` function is
    # undefined behaviour, which the optimiser turns into anything but a return.
    if re.search(r"\breturn\b", test_code) or not re.search(r"\bint\s+main\s*\(", test_code):
        tests, call = "\n#define main codeloop_test_main\n" + test_code + "\n#undef main\n", "int rc = codeloop_test_main();"
    else:
        tests, call = re.sub(r"\bint\s+main\s*\(", "void codeloop_test_main(", test_code), "codeloop_test_main(); int rc = 0;"
    return (
        "#include <unistd.h>\n#include <cstring>\n"
        + code
        + "\n"
        + tests
        + f"\nint main() {{\n  {call}\n  if (rc == 0) {{\n"
        + f'    const char* msg = "{token} {{\\"ev\\": \\"test\\", \\"index\\": 0, \\"passed\\": true, \\"status\\": \\"passed\\"}}\\n{token} {{\\"ev\\": \\"done\\"}}\\n";\n'
        + f"    if (write({VERDICT_FD}, msg, strlen(msg)) < 0) return 1;\n  }}\n  return rc;\n}}\n"
    )


def js_with_tests(code: str, tests: dict, token: str) -> str:
    report = (
        f"const __codeloopFs = require('fs');\n"
        f"function __codeloopEmit(e) {{ __codeloopFs.writeSync({VERDICT_FD}, '{token} ' + JSON.stringify(e) + '\\n'); }}\n"
    )
    if tests["kind"] == "function":
        body = (
            tests["test_code"]
            + "\n;__codeloopEmit({ev: 'test', index: 0, passed: true, status: 'passed'});\n"
        )
    else:
        setup = tests.get("setup_code", "")
        parts = [setup]
        for index, assertion in enumerate(tests["assertions"]):
            parts.append(
                f"try {{ {assertion}\n;__codeloopEmit({{ev: 'test', index: {index}, passed: true, status: 'passed'}}); }}"
                f" catch (e) {{ __codeloopEmit({{ev: 'test', index: {index}, passed: false, "
                f"status: (e && e.name === 'AssertionError') ? 'failed' : 'runtime-error', error: String(e).slice(0, 2000)}}); }}"
            )
        body = "\n".join(parts)
    return report + code + "\n;\n" + body + "\n;__codeloopEmit({ev: 'done'});\n"
