"""Plain data on the wire: how values cross between a candidate's process and the judge (stdlib only).

Loaded on both sides of the trust boundary: the candidate's process encodes what its functions return with
`encode`; the judge encodes the arguments it sends with the same function and reads answers back with
`decode`, which is strict: anything but this format is a `NotPlain` error, never an object of the program's.

The format is JSON in which every array is a tagged container, so types survive the trip:
    None, bool, int, float (NaN and infinities included), str  ->  JSON null, true/false, numbers, strings
    list ["l", ...]   tuple ["t", ...]   set ["s", ...]   frozenset ["f", ...]   dict ["d", k1, v1, k2, v2, ...]
    bytes ["b", hex]  bytearray ["a", hex]   complex ["c", real, imag]   an int of over 1,000 bits ["i", hex]
(decimal text of a huge int takes quadratic time to write: HumanEval+'s largest answers would take minutes)
An instance of a subclass of one of these types (a namedtuple, Counter, OrderedDict, an IntEnum member) is encoded
as its plain base with the base type's own methods: what the subclass changes never travels.
"""

from __future__ import annotations

import json
import sys

MAX_DEPTH = 200
BIG_INT_BITS = 1000
MAX_DECIMAL_DIGITS = 640  # decimal ints `encode` writes have at most 302 digits; longer ones are not read
HASH_CHECK_ITEMS = 64  # sets and dicts larger than this are checked for items crafted to share one hash
_SCALARS = (type(None), bool, int, float, str)
_TAGS = {list: "l", tuple: "t", set: "s", frozenset: "f", dict: "d", bytes: "b", bytearray: "a", complex: "c"}
_BASES = (bool, int, float, str, list, tuple, dict, set, frozenset, bytes, bytearray, complex)
_dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode
_loads = json.JSONDecoder().decode

sys.set_int_max_str_digits(0)  # ints of any size cross the wire (they are bounded by the message size)


class NotPlain(ValueError):
    """A value that is not plain data (the message names its type), or text that is not in this format."""


def _base(value):
    """(plain type, value as that exact type) for a plain value or an instance of a plain type's subclass."""
    t = type(value)
    if t in _TAGS or t in _SCALARS:
        return t, value
    if type(t) is not type:  # a metaclass could fake the MRO
        raise NotPlain(f"{t.__module__}.{t.__qualname__}")
    for base in t.__mro__:
        if base in _BASES:
            break
    else:
        raise NotPlain(f"{t.__module__}.{t.__qualname__}")
    if base is int:
        return int, int.__int__(value)
    if base is float:
        return float, float.__float__(value)
    if base is str:
        return str, str.__str__(value)
    if base is complex:
        return complex, complex(complex.real.__get__(value), complex.imag.__get__(value))
    if base in (bytes, bytearray):
        return base, base(memoryview(value))
    if base is dict:
        return dict, dict(dict.items(value))
    return base, base(base.__iter__(value))


def _tagged(value, depth: int):
    if depth > MAX_DEPTH:
        raise NotPlain("nested too deeply")
    t, value = _base(value)
    if t is int and value.bit_length() > BIG_INT_BITS:
        return ["i", format(value, "x")]
    if t in _SCALARS:
        return value
    tag = _TAGS[t]
    if t is dict:
        out = [tag]
        for key, item in value.items():
            out.append(_tagged(key, depth + 1))
            out.append(_tagged(item, depth + 1))
        return out
    if t in (bytes, bytearray):
        return [tag, value.hex()]
    if t is complex:
        return [tag, value.real, value.imag]
    return [tag, *[_tagged(item, depth + 1) for item in value]]


def encode(value) -> str:
    """JSON text of a plain value; raises NotPlain (naming the type) for anything else."""
    try:
        return _dumps(_tagged(value, 0))
    except RecursionError:
        raise NotPlain("nested too deeply") from None


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        raise NotPlain(f"unhashable {type(value).__name__} as a dict key or set element") from None
    return value


def _spread(items: list) -> list:
    """`items` (set elements or dict keys), refused when many share a hash: inserting n colliding items takes n^2
    steps, so a crafted answer could keep the judge busy for minutes. Distinct plain values rarely collide."""
    if len(items) > HASH_CHECK_ITEMS and len({hash(item) for item in items}) < 0.9 * len(items):
        raise NotPlain("a set or dict whose items share hashes")
    return items


def _untag(item, depth: int):
    t = type(item)
    if t in _SCALARS:
        return item
    if t is not list or not item or depth > MAX_DEPTH:
        raise NotPlain(f"not plain-data text ({t.__name__})")
    tag, rest = item[0], item[1:]
    if tag == "l":
        return [_untag(x, depth + 1) for x in rest]
    if tag == "t":
        return tuple(_untag(x, depth + 1) for x in rest)
    if tag in ("s", "f"):
        items = _spread([_hashable(_untag(x, depth + 1)) for x in rest])
        return set(items) if tag == "s" else frozenset(items)
    if tag == "d":
        if len(rest) % 2:
            raise NotPlain("dict with an odd number of items")
        keys = _spread([_hashable(_untag(rest[i], depth + 1)) for i in range(0, len(rest), 2)])
        return dict(zip(keys, [_untag(rest[i], depth + 1) for i in range(1, len(rest), 2)]))
    if tag in ("b", "a") and len(rest) == 1 and type(rest[0]) is str:
        try:
            data = bytes.fromhex(rest[0])
        except ValueError:
            raise NotPlain("bytes that are not hex") from None
        return data if tag == "b" else bytearray(data)
    if tag == "i" and len(rest) == 1 and type(rest[0]) is str and rest[0].lstrip("-").isalnum():
        try:
            return int(rest[0], 16)
        except ValueError:
            raise NotPlain("an int that is not hex") from None
    if tag == "c" and len(rest) == 2 and all(type(x) in (int, float) for x in rest):
        return complex(rest[0], rest[1])
    raise NotPlain(f"unknown tag {str(tag)[:20]!r}")


def untag(item):
    """The value of already-parsed JSON in this format; raises NotPlain for anything else."""
    try:
        return _untag(item, 0)
    except RecursionError:
        raise NotPlain("nested too deeply") from None


def decode(text: str):
    """The value `encode` wrote; raises NotPlain for anything else (malformed JSON included)."""
    digits = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(MAX_DECIMAL_DIGITS)
    try:
        return _untag(_loads(text), 0)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, NotPlain):
            raise
        raise NotPlain(f"malformed plain-data text ({type(exc).__name__})") from None
    finally:
        sys.set_int_max_str_digits(digits)
