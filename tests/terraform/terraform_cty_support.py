"""Helpers for the cty tests: hypothesis strategies and the go-cty oracle.

The oracle is tests/interop/terraform-cty (a Go program on the real
github.com/zclconf/go-cty), kept running for the session and spoken to in JSON lines.
"""

from __future__ import annotations

import decimal
import json
import subprocess
import threading
from typing import Any

from hypothesis import strategies as st

from plugwire.grpc.terraform import cty

# --- the Go oracle -------------------------------------------------------------------


def spec(value: Any, ty: cty.Type) -> dict[str, Any]:
    """The oracle's description of ``value`` at ``ty`` (how go-cty should build it)."""
    if isinstance(value, cty.Marked):
        return {"k": "mark", "marks": sorted(value.marks), "v": spec(value.value, ty)}
    if value is None:
        return {"k": "null"}
    if isinstance(value, cty.Unknown):
        out: dict[str, Any] = {"k": "unknown", "not_null": value.not_null}
        if value.string_prefix:
            out["prefix"] = value.string_prefix
        if value.number_lower is not None:
            out["lower"] = spec(value.number_lower, cty.Number)
            out["lower_inc"] = value.number_lower_inclusive
        if value.number_upper is not None:
            out["upper"] = spec(value.number_upper, cty.Number)
            out["upper_inc"] = value.number_upper_inclusive
        if value.length_lower is not None:
            out["len_lower"] = value.length_lower
        if value.length_upper is not None:
            out["len_upper"] = value.length_upper
        return out
    if isinstance(ty, cty.DynamicPseudoType):
        if isinstance(value, cty.DynamicValue):
            dty, inner = value.type, value.value
        else:
            dty, inner = cty.implied_type(value), value
        return {"k": "dyn", "type": json.loads(cty.type_to_json(dty)), "v": spec(inner, dty)}
    if isinstance(value, cty.DynamicValue):
        return spec(value.value, ty)
    if ty == cty.String:
        return {"k": "str", "str": value}
    if ty == cty.Bool:
        return {"k": "bool", "bool": value}
    if ty == cty.Number:
        if isinstance(value, int):
            return {"k": "int", "int": str(value)}
        if isinstance(value, float):
            return {"k": "float", "float": repr(value)}
        if value.is_infinite():
            return {"k": "dec", "dec": "+Inf" if value > 0 else "-Inf"}
        return {"k": "dec", "dec": str(value)}
    if isinstance(ty, cty.List | cty.Set):
        return {"k": "list" if isinstance(ty, cty.List) else "set",
                "elems": [spec(v, ty.element) for v in value]}  # fmt: skip
    if isinstance(ty, cty.Tuple):
        return {"k": "tuple", "elems": [spec(v, t) for v, t in zip(value, ty.elements, strict=True)]}
    if isinstance(ty, cty.Map):
        return {"k": "map", "attrs": {k: spec(v, ty.element) for k, v in value.items()}}
    if isinstance(ty, cty.Object):
        return {"k": "object", "attrs": {k: spec(v, ty.attributes[k]) for k, v in value.items()}}
    raise TypeError(ty)


class GoCty:
    """A running oracle process; ``ask`` sends one request and returns the answer."""

    def __init__(self, binary: str) -> None:
        self._proc = subprocess.Popen(
            [binary],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self._n = 0

    def ask(self, op: str, ty: cty.Type, **fields: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._n += 1
            req = {"id": str(self._n), "op": op, "type": json.loads(cty.type_to_json(ty)), **fields}
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"go-cty oracle exited ({self._proc.poll()}) on {req}")
        answer: dict[str, Any] = json.loads(line)
        assert answer["id"] == req["id"]
        return answer

    def encode(self, value: Any, ty: cty.Type) -> dict[str, Any]:
        return self.ask("encode", ty, spec=spec(value, ty))

    def decode_msgpack(self, data: bytes, ty: cty.Type) -> dict[str, Any]:
        return self.ask("decode_msgpack", ty, data=data.hex())

    def decode_json(self, data: bytes, ty: cty.Type) -> dict[str, Any]:
        return self.ask("decode_json", ty, data=data.decode())

    def type_json(self, ty: cty.Type) -> str:
        answer = self.ask("type", ty)
        assert "error" not in answer, answer
        return str(answer["type"])

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)


# --- strategies ----------------------------------------------------------------------

names = st.text(alphabet="abcdefgh_é", min_size=1, max_size=4)

primitive_types = st.sampled_from([cty.String, cty.Number, cty.Bool])


def types(max_leaves: int = 8, dynamic: bool = True) -> st.SearchStrategy[cty.Type]:
    """cty types, nested and small."""
    base = st.one_of(primitive_types, st.just(cty.Dynamic)) if dynamic else primitive_types

    def extend(inner: st.SearchStrategy[cty.Type]) -> st.SearchStrategy[cty.Type]:
        return st.one_of(
            inner.map(cty.List),
            inner.map(cty.Set),
            inner.map(cty.Map),
            st.lists(inner, max_size=3).map(cty.Tuple),
            st.dictionaries(names, inner, max_size=3).flatmap(
                lambda attrs: st.frozensets(st.sampled_from(sorted(attrs)) if attrs else st.nothing())
                .map(lambda opt: cty.Object(attrs, opt))
            ),
        )

    return st.recursive(base, extend, max_leaves=max_leaves)


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 60
    ),
    st.sampled_from([decimal.Decimal("0.1"), decimal.Decimal("-1234567890.0987654321"), 2**63, -(2**63) - 1]),
)
strings = st.text(max_size=12)


def unknowns(ty: cty.Type) -> st.SearchStrategy[cty.Unknown]:
    """Unknowns with refinements valid for ``ty``."""
    if isinstance(ty, cty.DynamicPseudoType):
        return st.just(cty.UNKNOWN)
    base = st.booleans()
    if ty == cty.String:
        return st.builds(
            lambda nn, p: cty.Unknown(not_null=nn, string_prefix=p or None),
            base,
            st.text(alphabet="abc-/ ", max_size=5),
        )
    if ty == cty.Number:
        ints = st.integers(-1000, 1000)

        def make(nn: bool, lo: int | None, hi: int | None, li: bool, hi_inc: bool) -> cty.Unknown:
            if lo is not None and hi is not None:
                lo, hi = min(lo, hi), max(lo, hi) + 1
            return cty.Unknown(not_null=nn, number_lower=lo, number_upper=hi,
                               number_lower_inclusive=li, number_upper_inclusive=hi_inc)  # fmt: skip

        return st.builds(make, base, st.none() | ints, st.none() | ints, st.booleans(), st.booleans())
    if ty.is_collection:

        def make_len(nn: bool, lo: int | None, extra: int | None) -> cty.Unknown:
            hi = None if extra is None else (lo or 0) + extra
            return cty.Unknown(not_null=nn, length_lower=lo, length_upper=hi)

        return st.builds(make_len, base, st.none() | st.integers(0, 5), st.none() | st.integers(0, 5))
    return st.builds(lambda nn: cty.Unknown(not_null=nn), base)


def values(ty: cty.Type, *, allow_unknown: bool = True, marks: bool = True) -> st.SearchStrategy[Any]:
    """Python values of ``ty`` (nulls, unknowns, marks and dynamic values included)."""

    def known(t: cty.Type) -> st.SearchStrategy[Any]:
        if t == cty.String:
            return strings
        if t == cty.Number:
            return numbers
        if t == cty.Bool:
            return st.booleans()
        if isinstance(t, cty.DynamicPseudoType):
            return types(max_leaves=4, dynamic=False).flatmap(
                lambda dt: values(dt, allow_unknown=allow_unknown, marks=marks).map(
                    lambda v: cty.DynamicValue(dt, v)
                )
            )
        if isinstance(t, cty.List | cty.Set | cty.Map):
            elems = element_values(t.element, allow_unknown=allow_unknown, marks=marks)
            if isinstance(t, cty.Map):
                return elems.flatmap(lambda e: st.dictionaries(names, e, max_size=3))
            return elems.flatmap(lambda e: st.lists(e, max_size=3))
        if isinstance(t, cty.Tuple):
            return st.tuples(*(values(e, allow_unknown=allow_unknown, marks=marks) for e in t.elements)).map(list)
        assert isinstance(t, cty.Object)
        return st.fixed_dictionaries(
            {k: values(v, allow_unknown=allow_unknown, marks=marks) for k, v in t.attributes.items()}
        )

    options = [known(ty), st.none()]
    if allow_unknown:
        options.append(unknowns(ty))
    out = st.one_of(*options)
    if marks:
        out = st.one_of(out, out.map(cty.sensitive))
    return out


def element_values(ety: cty.Type, **kw: Any) -> st.SearchStrategy[st.SearchStrategy[Any]]:
    """A strategy of element strategies: collection elements share one concrete type
    (go-cty rejects a list of dynamic values of different types)."""
    if not isinstance(ety, cty.DynamicPseudoType):
        return st.just(values(ety, **kw))
    return types(max_leaves=3, dynamic=False).map(
        lambda dt: values(dt, **kw).map(lambda v: cty.DynamicValue(dt, v))
    )


def typed_values(**kw: Any) -> st.SearchStrategy[tuple[cty.Type, Any]]:
    return types().flatmap(lambda t: st.tuples(st.just(t), values(t, **kw)))


def _wire_number(n: Any) -> Any:
    # go-cty (and so we) write an integral float beyond int64 as its shortest decimal
    # text, which reads back as that integer: 1e300 -> 10**300.
    if isinstance(n, float) and n == n and abs(n) != float("inf") and n == int(n):
        if not -(2**63) <= int(n) < 2**63:
            return int(decimal.Decimal(repr(n)))
    return n


def expected(value: Any, ty: cty.Type) -> Any:
    """What decoding the encoding of ``value`` gives: conformed, unmarked, and with
    go-cty's one lossy number rule applied."""
    return _walk(cty.conform(cty.unmark(value, ty)[0], ty))


def _walk(v: Any) -> Any:
    if isinstance(v, list):
        return [_walk(x) for x in v]
    if isinstance(v, dict):
        return {k: _walk(x) for k, x in v.items()}
    if isinstance(v, cty.DynamicValue):
        return cty.DynamicValue(v.type, _walk(v.value))
    return _wire_number(v)
