"""Request and result types of the sandbox (shared by the Python API and the HTTP service).

A request names a language, the program, optional tests in one of three styles and per-request limits:

    ExecRequest(language="python", code="def add(a, b):\n    return a + b\n",
                tests=FunctionTests(test_code="def check(f):\n    assert f(1, 2) == 3\n", entry_point="add"))

The result is a plain dataclass (`ExecResult`) with a status from `STATUSES`, bounded stdout/stderr and one
`TestVerdict` per test.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

LANGUAGES = ("python", "cpp", "javascript")
LANGUAGE_ALIASES = {"py": "python", "python3": "python", "c++": "cpp", "cxx": "cpp", "js": "javascript",
                    "node": "javascript"}

# Every status a result can have. Only "passed" counts as a pass; "sandbox-error" means the infrastructure failed
# (worker died, isolation broke) and says nothing about the program: callers retry it, never count it as a fail.
STATUSES = ("passed", "failed", "timeout", "memory", "runtime-error", "compile-error", "sandbox-error")
INFRA_STATUS = "sandbox-error"

MAX_CODE_BYTES = 1_000_000
MAX_STDIN_BYTES = 16_000_000
MAX_TEST_CASES = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_PRELUDE_DESCRIPTION = (
    "Python run in the program's own namespace just before it: the imports a benchmark's harness gives every "
    "solution (LiveCodeBench's `from collections import *`, ..., TACO's `from typing import List`). Trusted text; "
    "it runs in the program's process and decides nothing. Ignored for other languages.")


class _OmitsEmptyExtras(_Strict):
    """Fields added later (`_LATER`) are left out of the serialized tests while empty, so the hashes of problem sets
    that do not use them (raylib.data.problems.problems_sha), and the output directories tied to them, stay as they
    were."""

    _LATER: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _without_empty_extras(self, handler):
        data = handler(self)
        if isinstance(data, dict):
            for name in self._LATER:
                if not data.get(name):
                    data.pop(name, None)
        return data


class Limits(_Strict):
    """Per-request resource limits; each applies to one execution (one test case for stdin/stdout tests)."""

    wall_time_s: float = Field(10.0, gt=0, le=600, description="Wall-clock limit per execution, seconds.")
    cpu_time_s: float = Field(10.0, gt=0, le=600, description="CPU-time limit per execution (RLIMIT_CPU), seconds.")
    memory_mb: int = Field(1024, ge=16, le=65536, description="Memory limit (address space and memory cgroup), MiB.")
    output_bytes: int = Field(65536, ge=0, le=16_000_000, description="Bytes of stdout and of stderr kept; the rest is "
                              "dropped and `truncated` set.")
    max_processes: int = Field(64, ge=1, le=4096, description="Processes and threads the program may have at once "
                               "(RLIMIT_NPROC on its own uid).")
    file_size_mb: int = Field(16, ge=0, le=4096, description="Largest file the program may write (RLIMIT_FSIZE), MiB.")
    compile_time_s: float = Field(30.0, gt=0, le=600, description="Wall-clock limit for compiling (C++), seconds.")
    call_time_floor_s: float | None = Field(
        None, gt=0, le=600, description="Replayed Python tests: each call of the program gets max(this, "
        "call_time_factor x the reference solution's time on that call), and the whole run min(wall_time_s, their "
        "sum) + 1 s (EvalPlus's rule, floor 1 s). None: one limit, wall_time_s, for the whole run.")
    call_time_factor: float = Field(4.0, ge=1, le=100, description="See call_time_floor_s (EvalPlus: 4).")


_REFERENCE_DESCRIPTION = (
    "Python: a whole program known to pass these tests (a dataset's canonical solution). With it the tests are "
    "judged outside the program's process: a trusted run of the reference records the calls the tests make, the "
    "program only answers those calls with plain data, and the tests run again on its answers (judged_by "
    "'replay'). Without it the program and the tests share a process, as in the openai harness, and a program "
    "written against the harness can forge a pass (judged_by 'test-code').")


class FunctionTests(_Strict):
    """HumanEval style: `test_code` defines `check(candidate)`, called with the program's `entry_point`.

    For C++ and JavaScript, `test_code` is appended to the program and run (C++: it holds `main()`); the
    program passes if that code completes, which is signalled on the verdict channel, not by the exit status.
    """

    kind: Literal["function"] = "function"
    test_code: str = Field(..., min_length=1, description="Test program; for Python it must define `check`.")
    entry_point: str = Field("", description="Name of the function under test (Python: passed to `check`).")
    reference_solution: str | None = Field(None, max_length=MAX_CODE_BYTES, description=_REFERENCE_DESCRIPTION)
    declarations: str = Field(
        "", max_length=MAX_CODE_BYTES, description="C++: what the test code needs of the program (its includes and "
        "the entry point's prototype, e.g. a MultiPL-E prompt up to its opening brace, ending in ';'). With them the "
        "program and the tests are separate translation units, so the program's macros cannot reach the tests.")
    strict_return_types: bool = Field(
        True,
        description="Python: values returned by the program's functions to the tests must be plain data "
        "(None/bool/int/float/complex/str/bytes and lists/tuples/dicts/sets of them, or subclasses that change none "
        "of their comparisons or contents: namedtuples, collections.Counter/OrderedDict/defaultdict); anything else "
        "fails the test. This defeats objects whose __eq__ always answers True.",
    )

    @field_validator("entry_point")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if v and not v.isidentifier():
            raise ValueError(f"entry_point must be an identifier, got {v!r}")
        return v


class AssertionTests(_Strict):
    """MBPP style: a list of assertion statements, each one test (Python and JavaScript)."""

    kind: Literal["assertions"] = "assertions"
    assertions: list[str] = Field(..., min_length=1, max_length=MAX_TEST_CASES, description="One statement per test.")
    setup_code: str = Field("", description="Code run after the program and before the assertions "
                            "(MBPP test_setup_code).")
    reference_solution: str | None = Field(None, max_length=MAX_CODE_BYTES, description=_REFERENCE_DESCRIPTION)
    strict_return_types: bool = Field(True, description="As in FunctionTests.")


ORACLES = ("equal", "set", "not-none", "always", "sum-div", "surface-area", "digit-distance", "poly-root", "lcb",
           "apps")


class CallTests(_OmitsEmptyExtras):
    """EvalPlus / LeetCode style (Python): `entry_point` is called on each input in its own call, and each answer is
    compared, outside the program's process, with the expected one: given, or the reference solution's answer on
    that input, recorded once by a trusted run. Inputs are argument lists in the plain-data wire format
    (`sandbox.inside.plain.encode([arg, ...])`), so tuples, sets and NaN survive. Always judged by replay.

    LeetCode style: with `instance_of="Solution"`, a program that defines a class `Solution` is answered by the method
    `entry_point` of one instance of it, made before the first call (as LiveCodeBench's and TACO's harnesses do);
    a program without that class, by its function `entry_point`. Under their oracles (`lcb`, `apps`) a number of
    another type that equals an int or float (Fraction(3), Decimal('0.5')) is answered as that int or float, since
    those harnesses compare with ==."""

    _LATER = ("instance_of", "prelude")
    kind: Literal["calls"] = "calls"
    entry_point: str = Field(..., min_length=1, description="Name of the function (or method) under test.")
    instance_of: str = Field("", description="LeetCode style: the class whose instance's method is called when the "
                             "program defines it (e.g. 'Solution'); empty: always a function of the program.")
    prelude: str = Field("", max_length=MAX_CODE_BYTES, description=_PRELUDE_DESCRIPTION)
    inputs: list[str] = Field(..., min_length=1, max_length=100_000, description="Each call's arguments: "
                              "plain.encode([arg, ...]).")
    groups: list[tuple[str, int]] = Field(
        default_factory=list, description="Consecutive inputs judged as one test, e.g. [['base', 3], ['plus', 97]] "
        "(EvalPlus's base and plus inputs); each test stops at its first failing input. Empty: one test, 'inputs'.")
    expected: list[str] | None = Field(None, description="Each call's expected answer (plain.encode(value)); None: the "
                                       "reference solution's answers.")
    reference_solution: str | None = Field(None, max_length=MAX_CODE_BYTES, description="A whole program whose "
                                           "answers are the expected ones (also times the per-call limits).")
    atol: float = Field(0.0, ge=0, description="Absolute tolerance for float answers (EvalPlus: once an expected "
                        "answer is a float, 1e-6 when the task sets none; rtol 1e-7).")
    oracle: Literal[ORACLES] = Field(  # type: ignore[valid-type]
        "equal", description="How an answer is compared: equal (EvalPlus's rule with atol), or one of EvalPlus's "
        "special oracles: set (as sets), not-none (the reference answer says whether the answer is not None), always, "
        "sum-div (or 0), surface-area (or EvalPlus's second formula), digit-distance (or zero-padded digits), "
        "poly-root (a root of the polynomial given as the first argument, within atol); lcb (LiveCodeBench's rule: a "
        "tuple answer as a list, then ==); apps (TACO/APPS's rule: as lcb, or equal to the expected list's first item, "
        "or a list of tuples equal to it as lists).")

    @field_validator("entry_point", "instance_of")
    @classmethod
    def _identifier(cls, v: str, info) -> str:
        if (v or info.field_name == "entry_point") and not v.isidentifier():
            raise ValueError(f"{info.field_name} must be an identifier, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.expected is None and not self.reference_solution:
            raise ValueError("call tests need expected answers or a reference_solution to record them with")
        if self.expected is not None and len(self.expected) != len(self.inputs):
            raise ValueError(f"{len(self.expected)} expected answers for {len(self.inputs)} inputs")
        if self.expected is not None:
            from sandbox.inside import plain

            for index, text in enumerate(self.expected):
                try:
                    plain.decode(text)
                except plain.NotPlain as exc:
                    raise ValueError(f"expected[{index}] is not plain-data text "
                                     f"(sandbox.inside.plain): {exc}") from None
        if self.groups and sum(size for _, size in self.groups) != len(self.inputs):
            raise ValueError(f"groups cover {sum(size for _, size in self.groups)} inputs, not {len(self.inputs)}")
        return self


class StdioCase(_Strict):
    input: str = Field("", max_length=MAX_STDIN_BYTES, description="Bytes fed to stdin (UTF-8 text).")
    output: str = Field(..., max_length=MAX_STDIN_BYTES, description="Expected stdout.")


class StdioTests(_OmitsEmptyExtras):
    """LiveCodeBench/TACO style: run the program once per case on `input`, compare stdout with `output`."""

    _LATER = ("prelude",)
    kind: Literal["stdio"] = "stdio"
    cases: list[StdioCase] = Field(..., min_length=1, max_length=MAX_TEST_CASES, description="Test cases.")
    float_tolerance: float = Field(1e-6, ge=0, description="Tokens that both parse as numbers match within this "
                                   "absolute/relative tolerance.")
    stop_on_first_failure: bool = Field(False, description="Skip the remaining cases after the first failure.")
    prelude: str = Field("", max_length=MAX_CODE_BYTES, description=_PRELUDE_DESCRIPTION)


Tests = Annotated[Union[FunctionTests, AssertionTests, CallTests, StdioTests], Field(discriminator="kind")]


class TraceSpec(_Strict):
    """Trace mode (Python): run the program once and return its line-level trace (`ExecResult.trace`): each executed
    statement's line, its frame's variables after it and the line that runs next. The program must stay inside the
    traceable subset (sandbox/judge/traceable.py); one that does not is refused as a compile-error naming the line."""

    entry_point: str = Field("", description="Call this function of the program on `args` and trace the call; "
                             "empty: run the program as a script on the request's stdin and trace it all.")
    args: str = Field("", description="The call's arguments: sandbox.inside.plain.encode([arg, ...]).")
    max_steps: int = Field(10_000, ge=1, le=1_000_000, description="Steps recorded; past this the trace is "
                           "truncated (the program runs on untraced).")
    max_value_chars: int = Field(200, ge=8, le=100_000, description="Characters of one rendered value; longer ones "
                                 "are cut and end in '...'.")
    max_trace_bytes: int = Field(4_000_000, ge=1024, le=64_000_000, description="Bytes of trace kept; past this "
                                 "the trace is truncated.")

    @model_validator(mode="after")
    def _call(self):
        if self.entry_point and not self.entry_point.isidentifier():
            raise ValueError(f"entry_point must be an identifier, got {self.entry_point!r}")
        if self.entry_point:
            from sandbox.inside import plain

            try:
                args = plain.decode(self.args or "[\"l\"]")
            except plain.NotPlain as exc:
                raise ValueError(f"args is not plain-data text (sandbox.inside.plain): {exc}") from None
            if not isinstance(args, list):
                raise ValueError("args must encode a list of arguments")
        elif self.args:
            raise ValueError("args without entry_point")
        return self


class ExecRequest(_Strict):
    """One program to run, optionally against tests."""

    language: str = Field("python", description=f"One of {LANGUAGES} (aliases: {sorted(LANGUAGE_ALIASES)}).")
    code: str = Field(..., description="The program source (UTF-8).")
    tests: Tests | None = Field(None, description="Tests to run; None runs the program once on `stdin`.")
    trace: TraceSpec | None = Field(None, description="Trace the run instead (Python, no tests).")
    stdin: str = Field("", max_length=MAX_STDIN_BYTES, description="stdin when there are no stdio tests.")
    limits: Limits = Field(default_factory=Limits, description="Resource limits.")
    request_id: str = Field("", max_length=256, description="Opaque id echoed in the result.")

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v):
        if not isinstance(v, str):
            raise ValueError(f"language must be a string, one of {LANGUAGES}")
        name = LANGUAGE_ALIASES.get(v.strip().lower(), v.strip().lower())
        if name not in LANGUAGES:
            raise ValueError(f"unknown language {v!r}; expected one of {LANGUAGES} "
                             f"(aliases {sorted(LANGUAGE_ALIASES)})")
        return name

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("code is empty")
        if len(v.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES:
            raise ValueError(f"code is larger than {MAX_CODE_BYTES} bytes")
        return v

    @model_validator(mode="after")
    def _tests_fit_language(self):
        if isinstance(self.tests, AssertionTests) and self.language == "cpp":
            raise ValueError("assertion-list tests are supported for python and javascript; "
                             "for cpp use function tests whose test_code holds main()")
        if isinstance(self.tests, FunctionTests) and self.language == "python" and not self.tests.entry_point:
            raise ValueError("python function tests need entry_point (the function passed to check)")
        if isinstance(self.tests, CallTests) and self.language != "python":
            raise ValueError("call tests are for python programs")
        if self.trace is not None and (self.language != "python" or self.tests is not None):
            raise ValueError("trace mode is for python programs without tests")
        return self


@dataclasses.dataclass
class TestVerdict:
    """The verdict of one test: an assertion, one `check` call, or one stdin/stdout case."""

    __test__ = False  # not a pytest test class, despite the name

    index: int
    name: str
    passed: bool
    status: str  # passed / failed / timeout / memory / runtime-error / skipped
    error: str = ""
    duration_s: float = 0.0
    expected: str | None = None  # stdio: expected output (bounded)
    actual: str | None = None  # stdio: actual output (bounded)


@dataclasses.dataclass
class ExecResult:
    """What one request produced. `passed` is True only when every test passed (or, without tests, exit 0)."""

    status: str
    passed: bool
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    duration_s: float = 0.0
    tests: list[TestVerdict] = dataclasses.field(default_factory=list)
    error: str = ""  # short human-readable reason for a non-passed status
    request_id: str = ""
    isolation: str = ""  # backend that ran it, e.g. "bwrap+uid+cgroup"
    # How the verdict was reached: "replay" (tests run outside the program's process on its plain-data answers),
    # "outside" (stdin/stdout compared, or the exit status, outside it), "test-code" (tests in the program's own
    # process: a program written against the harness can forge these); judge_note says why test-code mode was used.
    judged_by: str = ""
    judge_note: str = ""
    # Trace mode: {"steps": [{"line", "vars": {name: value}, "next"}], "ending": "completed" | "exception" |
    # "stopped", "detail", "truncated"}, written by the tracer and checked by the judge (sandbox/judge/traceable.py).
    trace: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExecResult":
        d = dict(d)
        d["tests"] = [TestVerdict(**t) for t in d.get("tests", [])]
        return cls(**d)


def sandbox_error(message: str, request_id: str = "", isolation: str = "") -> ExecResult:
    return ExecResult(status=INFRA_STATUS, passed=False, error=message, request_id=request_id, isolation=isolation)
