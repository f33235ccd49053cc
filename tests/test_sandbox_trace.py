"""Trace mode of the sandbox: traces written out by hand, limits, and attacks on the trace, one property per test.

The traces below were written from reading each program, step by step: the line that runs, its frame's variables
after it, the line that runs next.
"""

from __future__ import annotations

import pytest

from sandbox import ExecRequest, Limits, Sandbox, SandboxConfig
from sandbox.inside import plain
from sandbox.judge import traceable
from sandbox.schema import TraceSpec

UID_BASE = 63000
LIMITS = Limits(wall_time_s=10, cpu_time_s=10, memory_mb=512)


@pytest.fixture(scope="module")
def box():
    sandbox = Sandbox(SandboxConfig(workers=1, uid_base=UID_BASE))
    yield sandbox
    sandbox.close()


def trace(box, code: str, stdin: str = "", call: tuple | None = None, limits: Limits = LIMITS, **spec):
    if call:
        spec.update(entry_point=call[0], args=plain.encode(list(call[1:])))
    return box.run(ExecRequest(code=code, stdin=stdin, trace=TraceSpec(**spec), limits=limits))


def steps(result) -> list[tuple]:
    return [(s["line"], s["vars"], s["next"]) for s in result.trace["steps"]]


# ------------------------------------------------------------------------------------------- traces by hand


def test_a_loop_is_traced_step_by_step(box):
    r = trace(box, "x = 0\nfor i in range(2):\n    x += i\nprint(x)\n")
    assert r.passed and r.stdout == "1\n", r
    assert steps(r) == [
        (1, {"x": "0"}, 2),
        (2, {"x": "0", "i": "0"}, 3),
        (3, {"x": "0", "i": "0"}, 2),
        (2, {"x": "0", "i": "1"}, 3),
        (3, {"x": "1", "i": "1"}, 2),
        (2, {"x": "1", "i": "1"}, 4),  # the loop ends: i keeps its last value
        (4, {"x": "1", "i": "1"}, "<END>"),
    ]
    assert r.trace["ending"] == "completed" and not r.trace["truncated"]


def test_a_branch_goes_where_the_input_sends_it(box):
    code = "a, b = map(int, input().split())\nif a > b:\n    m = a\nelse:\n    m = b\nprint(m)\n"
    taken = trace(box, code, stdin="7 5\n")
    assert steps(taken) == [(1, {"a": "7", "b": "5"}, 2), (2, {"a": "7", "b": "5"}, 3),
                            (3, {"a": "7", "b": "5", "m": "7"}, 6), (6, {"a": "7", "b": "5", "m": "7"}, "<END>")]
    other = trace(box, code, stdin="3 5\n")
    assert [s[0] for s in steps(other)] == [1, 2, 5, 6]


def test_recursion_steps_into_each_call(box):
    code = "def f(n):\n    if n <= 1:\n        return 1\n    return n * f(n - 1)\n"
    r = trace(box, code, call=("f", 2))
    assert steps(r) == [(2, {"n": "2"}, 4), (4, {"n": "2"}, 2), (2, {"n": "1"}, 3), (3, {"n": "1"}, "<END>")]


def test_an_exception_goes_to_its_handler_then_one_ends_the_run(box):
    code = ("def g(x):\n    y = x + 1\n    raise ValueError('bad')\n\ntry:\n    g(1)\nexcept ValueError as e:\n"
            "    z = 2\nq = [1][5]\n")
    r = trace(box, code)
    assert r.status == "runtime-error" and r.error.startswith("IndexError"), r
    assert steps(r) == [
        (1, {}, 5), (5, {}, 6), (6, {}, 2),
        (2, {"x": "1", "y": "2"}, 3), (3, {"x": "1", "y": "2"}, 7),
        (7, {"e": "<ValueError>"}, 8), (8, {"z": "2"}, 9), (9, {"z": "2"}, "!IndexError"),
    ]
    assert r.trace["ending"] == "exception" and r.trace["detail"] == "IndexError: list index out of range"


def test_a_generator_interleaves_with_its_consumer(box):
    code = "def gen(n):\n    for i in range(n):\n        yield i * 2\ns = 0\nfor v in gen(2):\n    s += v\n"
    r = trace(box, code)
    assert steps(r) == [
        (1, {}, 4), (4, {"s": "0"}, 5), (5, {"s": "0", "v": "0"}, 2),
        (2, {"n": "2", "i": "0"}, 3), (3, {"n": "2", "i": "0"}, 6), (6, {"s": "0", "v": "0"}, 5),
        (5, {"s": "0", "v": "2"}, 2), (2, {"n": "2", "i": "1"}, 3), (3, {"n": "2", "i": "1"}, 6),
        (6, {"s": "2", "v": "2"}, 5), (5, {"s": "2", "v": "2"}, 2), (2, {"n": "2", "i": "1"}, "<END>"),
    ]


def test_values_are_rendered_as_python_writes_them(box):
    code = ("from collections import deque, Counter, defaultdict\nimport math\ndef f():\n    return 1\n"
            "a = [1, 'x', (2,), {3: None}]\nd = deque([1])\nc = Counter('aab')\ndd = defaultdict(int)\n"
            "s = {1}\nfl = 0.5\n")
    r = trace(box, code)
    last = r.trace["steps"][-1]["vars"]
    assert last == {"a": "[1, 'x', (2,), {3: None}]", "d": "deque([1])", "c": "Counter({'a': 2, 'b': 1})",
                    "dd": "defaultdict(<class 'int'>, {})", "s": "{1}", "fl": "0.5"}  # no f, math, deque...


def test_each_step_says_its_call_and_the_first_says_the_arguments(box):
    r = trace(box, "def f(a):\n    return a + 1\nx = f(1)\ny = f(x)\n")
    got = [(s["line"], s["frame"], s["entry"]) for s in r.trace["steps"]]
    assert got == [(1, 0, {}), (3, 0, None), (2, 1, {"a": "1"}), (4, 0, None), (2, 2, {"a": "2"})]


def test_variables_keep_the_order_they_first_got_a_value(box):
    r = trace(box, "def f():\n    b = 1\n    a = 2\n    return a + b\n", call=("f",))
    assert list(r.trace["steps"][-1]["vars"]) == ["b", "a"]


# ------------------------------------------------------------------------------------------------- limits


def test_long_values_are_cut_and_marked(box):
    r = trace(box, "s = 'x' * 1000\n", max_value_chars=20)
    assert r.trace["steps"][0]["vars"]["s"] == "'" + "x" * 19 + "..."


def test_more_steps_than_the_limit_truncate_the_trace_and_the_run_goes_on(box):
    r = trace(box, "t = 0\nfor i in range(100):\n    t += i\nprint(t)\n", max_steps=10)
    assert r.passed and r.stdout == "4950\n", r
    assert len(r.trace["steps"]) <= 10 and r.trace["truncated"]
    assert r.trace["ending"] == "completed"


def test_a_trace_larger_than_its_byte_limit_is_truncated(box):
    r = trace(box, "xs = []\nfor i in range(500):\n    xs.append(i)\n", max_trace_bytes=2048)
    assert r.trace["truncated"] and 0 < len(r.trace["steps"]) < 100


def test_an_endless_loop_times_out_with_the_steps_it_made(box):
    r = trace(box, "i = 0\nwhile True:\n    i += 1\n", limits=Limits(wall_time_s=1, cpu_time_s=1), max_steps=10**6)
    assert r.status == "timeout", r
    assert r.trace["ending"] == "stopped" and r.trace["truncated"] and len(r.trace["steps"]) > 10


# ------------------------------------------------------------------------------------------------- attacks


def assert_refused(result, what: str) -> None:
    assert result.status == "compile-error" and result.trace is None, result
    assert "not traceable" in result.error and what in result.error, result.error


def test_printed_trace_events_stay_in_stdout(box):
    fake = '["s",1,[["x","999"]],"<END>"]\\n["e","completed","",false]'
    r = trace(box, f"x = 1\nprint('{fake}')\n")
    assert steps(r) == [(1, {"x": "1"}, 2), (2, {"x": "1"}, "<END>")]
    assert '"999"' in r.stdout


def test_a_program_cannot_import_os_to_write_on_the_trace_descriptor(box):
    assert_refused(trace(box, "x = 1\nimport os\nos.write(3, b'forged')\n"), "solution.py:2: module 'os'")


def test_a_program_cannot_open_the_trace_descriptor(box):
    r = trace(box, "x = 1\nf = open(3, 'w')\nf.write('[\"e\",\"completed\",\"\",false]')\n")
    assert r.status == "runtime-error" and "PermissionError" in r.error, r
    assert steps(r) == [(1, {"x": "1"}, 2), (2, {"x": "1"}, "!PermissionError")]


def test_a_program_cannot_import_by_name(box):
    assert_refused(trace(box, "m = __import__('os')\n"), "'__import__'")


def test_a_program_cannot_reach_attributes_by_a_name_given_at_run_time(box):
    assert_refused(trace(box, "g = (i for i in [1])\nf = getattr(g, 'gi_frame')\n"), "'getattr'")


def test_a_program_cannot_walk_from_a_generator_to_the_tracer_frames(box):
    assert_refused(trace(box, "g = (i for i in [1])\nf = g.gi_frame\n"), "'gi_frame'")


def test_a_format_string_literal_cannot_name_internals(box):
    assert_refused(trace(box, "g = (i for i in [1])\ns = '{0.gi_frame.f_back}'.format(g)\n"),
                   "'gi_frame' (in a format string)")


def test_a_program_cannot_reach_the_interpreter_through_a_builtin_methods_owner(box):
    assert_refused(trace(box, "b = print.__self__\n"), "'__self__'")


def test_a_program_cannot_list_every_class(box):
    assert_refused(trace(box, "cs = ().__class__.__base__.__subclasses__()\n"), "'__subclasses__'")


def test_a_program_cannot_read_a_functions_globals(box):
    assert_refused(trace(box, "import sys\ng = sys.stdin.__init__.__globals__\n"), "'__globals__'")


def test_a_program_cannot_take_a_traceback_to_the_tracer(box):
    assert_refused(trace(box, "try:\n    1 / 0\nexcept Exception as e:\n    t = e.__traceback__\n"),
                   "'__traceback__'")


def test_a_program_cannot_run_text(box):
    assert_refused(trace(box, "exec('import os')\n"), "'exec'")


def test_a_program_cannot_use_stdlib_helpers_that_read_attributes_by_name(box):
    assert_refused(trace(box, "from operator import attrgetter\n"), "operator.attrgetter")
    assert_refused(trace(box, "from functools import wraps\n"), "functools.wraps")
    assert_refused(trace(box, "from string import Formatter\n"), "string.Formatter")


def test_a_program_cannot_turn_the_tracer_off(box):
    r = trace(box, "import sys\nx = 1\nsys.settrace(None)\ny = 2\n")
    assert r.status == "runtime-error" and "AttributeError" in r.error, r  # the stand-in sys has no settrace
    assert [s[0] for s in steps(r)] == [1, 2, 3]


def test_the_tracer_never_runs_the_programs_repr(box):
    code = ("class Loud:\n    def __repr__(self):\n        print('REPR RAN')\n        return 'forged'\n"
            "x = Loud()\ny = 1\n")
    r = trace(box, code)
    assert "REPR RAN" not in r.stdout, r
    assert r.trace["steps"][-1]["vars"]["x"] == "<Loud>"


def test_a_metaclass_name_property_does_not_run_in_the_tracer(box):
    code = ("class Meta(type):\n    @property\n    def __name__(cls):\n        print('NAME RAN')\n        return 'x'\n"
            "class A(metaclass=Meta):\n    pass\na = A()\n")
    r = trace(box, code)
    assert "NAME RAN" not in r.stdout and r.trace["steps"][-1]["vars"]["a"] == "<A>", r


def test_the_builtins_a_program_replaces_are_its_own(box):
    r = trace(box, "print = len\nn = print('abc')\n")
    assert steps(r)[-1] == (2, {"n": "3"}, "<END>")  # `print` is a function: left out of the variables


def test_stdin_idioms_work_through_the_stand_in_sys(box):
    code = ("import sys\ninput = sys.stdin.readline\nn = int(input())\nrest = sys.stdin.read().split()\n"
            "data = open(0).read()\n")
    r = trace(box, code, stdin="3\na b\n")
    assert r.passed, r
    assert r.trace["steps"][-1]["vars"] == {"n": "3", "rest": "['a', 'b']", "data": "''"}


# ------------------------------------------------------------------------------------ the judge's checks


PROGRAM = traceable.Program("x = 1\nfor i in range(2):\n    x += i\n")


def judge(lines: list[str]) -> dict:
    return traceable.parse_events(("\n".join(lines) + "\n").encode(), PROGRAM, max_steps=100, max_value_chars=50)


def test_the_judge_accepts_a_consistent_trace():
    t = judge(['["s",1,[["x","1"]],2,0,[]]', '["s",2,[["x","1"],["i","0"]],3,0,null]',
               '["s",3,[["x","1"]],"<END>",0,null]', '["e","completed","",false]'])
    assert [s["line"] for s in t["steps"]] == [1, 2, 3]


@pytest.mark.parametrize("lines, why", [
    (['["s",7,[],"<END>",0,null]', '["e","completed","",false]'], "line 7 holds no code"),
    (['["s",1,[["secret","1"]],"<END>",0,null]', '["e","completed","",false]'], "'secret' is not a name"),
    (['["s",1,[],3,0,null]', '["s",2,[],"<END>",0,null]', '["e","completed","",false]'], "says line 3 runs next"),
    (['["s",1,[],2,0,null]'], "no end event"),
    (['["e","completed","",false]', '["s",1,[],"<END>",0,null]'], "after the end event"),
    (['["s",1,[["x","' + "9" * 60 + '"]],"<END>",0,null]', '["e","completed","",false]'], "longer than the limit"),
    (['["s",1,[],2,0,null]', '["e","completed","",false]'], "does not end it"),
    (['not json'], "not JSON"),
    (['["s",1,[],"<END>"]', '["e","completed","",false]'], "malformed"),
    (['["s",1,[],"<END>",0,[["secret","1"]]]', '["e","completed","",false]'], "'secret' is not a name"),
])
def test_the_judge_refuses_events_that_are_not_a_trace_of_the_program(lines, why):
    with pytest.raises(traceable.BadTrace, match=why):
        judge(lines)


def test_the_traceable_subset_names_the_line_of_the_first_violation():
    with pytest.raises(traceable.NotTraceable) as caught:
        traceable.check_traceable("a = 1\nb = 2\nimport subprocess\n")
    assert caught.value.line == 3 and "solution.py:3" in str(caught.value)


# Found by an attack review of the first version (each worked then: read any attribute, or hid lines from the trace).


def test_a_class_pattern_cannot_read_an_attribute_named_at_run_time(box):
    code = ("def get(obj, name):\n    class P:\n        __match_args__ = (name,)\n    match obj:\n"
            "        case P(v):\n            return v\n")
    assert_refused(trace(box, code), "positional class patterns")


def test_a_builtin_class_pattern_still_matches(box):
    r = trace(box, "match 5:\n    case int(x):\n        y = x + 1\n")
    assert r.passed and r.trace["steps"][-1]["vars"] == {"x": "5", "y": "6"}, r
    assert_refused(trace(box, "int = list\nmatch 5:\n    case int(x):\n        pass\n"), "rebinds")


def test_copy_which_sets_attributes_the_program_names_is_not_available(box):
    assert_refused(trace(box, "import copy\n"), "module 'copy'")


def test_a_class_namespace_of_the_programs_own_cannot_switch_the_tracer_off(box):
    code = ("U = '_' + '_'\ndef boom(*a):\n    raise KeyboardInterrupt\n"
            "NS = type('NS', (dict,), {U + 'iter' + U: boom})\n"
            "Meta = type('Meta', (type,), {U + 'prepare' + U: lambda name, bases: NS()})\n"
            "Base = Meta('Base', (), {})\ntry:\n    class C(Base):\n        a = 1\nexcept KeyboardInterrupt:\n"
            "    pass\nsecret = 41\nsecret = secret + 1\n")
    r = trace(box, code)
    assert not r.trace["truncated"] and steps(r)[-1][0] == 13 and steps(r)[-1][1]["secret"] == "42", r


def test_recursion_to_the_limit_truncates_the_trace_rather_than_hiding_steps(box):
    code = ("import sys\nsys.setrecursionlimit(100)\ndef dive(n):\n    try:\n        dive(n + 1)\n"
            "    except RecursionError:\n        pass\ndive(0)\nsecret = 41\nsecret = secret + 1\n")
    r = trace(box, code)
    assert r.passed and r.trace["truncated"], r  # the trace stops where the tracer could not follow, and says so
    assert all(s["line"] != 10 for s in r.trace["steps"])


def test_an_exception_message_is_not_computed_by_the_programs_code(box):
    code = ("class E(Exception):\n    def __str__(self):\n        print('STR RAN')\n        return 'forged'\n"
            "raise E('x')\n")
    r = trace(box, code)
    assert "STR RAN" not in r.stdout and r.trace["detail"] == "E: x", r


# Found by a second attack review (each worked on the version after the first one's fixes).


def test_a_format_string_cannot_read_attributes_named_at_run_time(box):
    code = "def get(o, path):\n    return ('{0.' + path + '}').format(o)\n"
    assert_refused(trace(box, code), ".format is available when tracing on a string literal only")
    assert_refused(trace(box, "s = '{0.__globals__}'.format(len)\n"), "'__globals__' (in a format string)")
    assert trace(box, "s = '{0.real}-{1:>{2}}'.format(3, 'x', 4)\n").passed


def test_the_object_of_a_failed_attribute_lookup_is_out_of_reach(box):
    assert_refused(trace(box, "try:\n    len.zz\nexcept AttributeError as e:\n    o = e.obj\n"), "'obj'")


def test_a_metaclass_cannot_pass_its_instances_off_as_ints(box):
    code = ("class M(type):\n    def __eq__(cls, other):\n        return other is int\n    def __hash__(cls):\n"
            "        return 7\nclass Fake(metaclass=M):\n    def __repr__(self):\n        return '1045'\nx = Fake()\n")
    assert trace(box, code).trace["steps"][-1]["vars"] == {"x": "<Fake>"}


def test_a_finalizer_never_runs_inside_the_tracer(box):
    code = ("class D:\n    def __del__(self):\n        print('finalized')\ndef main():\n    x = D()\n    x = 1\n"
            "    y = 2\n    return y\nmain()\nz = 3\n")
    r = trace(box, code)
    # CPython copies a function's locals into a dict before each trace call, dropping D() there: its __del__ would
    # run inside the tracing machinery, unrecorded. The tracer holds what it read until the trace is written.
    assert [s["line"] for s in r.trace["steps"]] == [1, 1, 2, 4, 9, 5, 6, 7, 8, 10] and not r.trace["truncated"], r
    assert r.stdout == ""  # nor after it: the child leaves without running finalizers (they would be unrecorded)


def test_a_class_body_runs_traced(box):
    r = trace(box, "class Main:\n    t = 0\n    for k in range(2):\n        t += k\nend = 1\n")
    assert [s["line"] for s in r.trace["steps"]] == [1, 1, 2, 3, 4, 3, 4, 3, 5], r  # the body starts on its line
    assert r.trace["steps"][3]["vars"] == {}  # a class namespace is never read (it may be the program's own mapping)


def test_a_renamed_exception_class_cannot_break_the_trace(box):
    code = "E = type('not a name', (Exception,), {})\nraise E\n"
    r = trace(box, code)
    assert r.status == "runtime-error" and r.trace["steps"][-1]["next"] == "!Exception", r


def test_a_star_import_binds_the_names_of_the_stand_in(box):
    r = trace(box, "from math import *\nx = floor(pi)\n")
    assert r.passed and r.trace["steps"][-1]["vars"]["x"] == "3", r


# Found by a third attack review.


def test_a_class_or_function_named_by_a_str_subclass_runs_nothing_in_the_tracer(box):
    code = ("class S(str):\n    def __str__(self):\n        print('STR RAN')\n        return 'Box'\n"
            "Box = type(S('Box'), (), {})\nb = Box()\n")
    r = trace(box, code)
    assert "STR RAN" not in r.stdout and r.trace["steps"][-1]["vars"]["b"] == "<object>", r


def test_a_namespace_key_of_a_str_subclass_runs_nothing_in_the_tracer(box):
    assert_refused(trace(box, "import math\nclass M:\n    pass\nmath.__class__ = M\n"), "assigning __class__")


def test_private_names_in_a_class_are_traced_under_their_mangled_name(box):
    code = "class C:\n    def f(self):\n        __t = 1\n        return __t\nv = C().f()\n"
    r = trace(box, code)
    assert r.passed and {"self": "<C>", "_C__t": "1"} in [s["vars"] for s in r.trace["steps"]], r


def test_a_class_namespace_of_the_programs_own_is_never_read_by_the_tracer(box):
    # reading a class body's f_locals makes CPython copy its cells in (here: deleting the namespace's __class__,
    # which frees a Node and runs its __del__ untraced); the tracer never reads a class body's namespace
    code = ("hidden = []\nclass Node:\n    def __del__(self):\n        hidden.append(1)\nclass Meta(type):\n"
            "    @classmethod\n    def __prepare__(cls, name, bases):\n        return {'__class__': Node()}\n"
            "class A(metaclass=Meta):\n    def f(self):\n        return super().f\nn = len(hidden)\n")
    r = trace(box, code)
    assert not r.trace["truncated"] and r.trace["steps"][-1]["vars"]["n"] == "0", r


def test_values_render_as_their_repr_in_their_own_order(box):
    code = ("from collections import OrderedDict, Counter, deque\no = OrderedDict(a=1, b=2)\no.move_to_end('a')\n"
            "e = OrderedDict()\nc = Counter('abbccc')\nd = deque([1], maxlen=3)\nbig = 10 ** 5000\n")
    last = trace(box, code).trace["steps"][-1]["vars"]
    assert last == {"o": "OrderedDict([('b', 2), ('a', 1)])", "e": "OrderedDict()",
                    "c": "Counter({'c': 3, 'b': 2, 'a': 1})", "d": "deque([1], maxlen=3)",
                    "big": "<int of 16610 bits>"}


def test_running_out_of_memory_is_the_programs_failure_with_the_steps_it_made(box):
    code = ("keep = []\nsize = 1 << 22\nwhile size:\n    try:\n        keep.append(bytearray(size))\n"
            "    except MemoryError:\n        size = size >> 1\n")
    r = trace(box, code, limits=Limits(wall_time_s=10, cpu_time_s=10, memory_mb=256), max_steps=100)
    assert r.status in ("passed", "memory", "runtime-error"), r  # never "sandbox-error", which would be retried
    assert r.trace is not None and (r.trace["truncated"] or r.trace["ending"] == "completed"), r


def test_values_replaced_in_a_loop_are_held_up_to_a_cap_then_the_trace_is_truncated(box):
    code = "def f():\n    for i in range(400):\n        row = [0] * 250000\n    return i\nf()\n"
    r = trace(box, code, limits=Limits(wall_time_s=20, cpu_time_s=20, memory_mb=1024), max_steps=10**6)
    assert r.passed and r.trace["truncated"], r  # ~2 MB a row: 256 MiB held, then no more recording


def test_a_lambda_entry_point_is_not_traced_as_if_nothing_ran(box):
    r = trace(box, "solve = lambda n: sum([i for i in range(n)])\n", call=("solve", 3))
    assert r.status == "runtime-error" and "not a function the program defines with def" in r.error, r


# Found by a fifth attack review.


def test_a_star_import_binds_what_the_judge_expects_whatever_the_program_set(box):
    r = trace(box, "import math\nmath.answer = 42\nfrom math import *\nx = floor(2.5)\n")
    assert r.passed and "answer" not in r.trace["steps"][-1]["vars"], r


def test_a_counter_of_floats_renders_in_its_own_order(box):
    r = trace(box, "from collections import Counter\nc = Counter({'a': 1.0, 'b': 2.0})\n")
    assert r.trace["steps"][-1]["vars"]["c"] == "Counter({'b': 2.0, 'a': 1.0})", r
