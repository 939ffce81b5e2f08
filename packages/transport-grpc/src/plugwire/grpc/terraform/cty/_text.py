"""Text forms go-cty produces: Go's encoding/json string escaping, big.Float text.

Private helpers shared by the JSON codec, the type JSON and set ordering.
"""

from __future__ import annotations

import decimal
import math
import re

Num = int | float | decimal.Decimal

_GO_JSON_ESCAPE = re.compile('[\\x00-\\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    ch = match.group()
    short = _SHORT.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate: Go writes U+FFFD for invalid UTF-8
        return "\\ufffd"
    return f"\\u{code:04x}"


def go_json_string(s: str) -> str:
    """``json.Marshal(s)`` as Go writes it (HTML-safe escapes, U+2028/9 escaped)."""
    return '"' + _GO_JSON_ESCAPE.sub(_escape_one, s) + '"'


def _decimal_f(d: decimal.Decimal) -> str:
    """``d`` in positional notation with trailing fractional zeros removed."""
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    digs = list(digits)
    while exp < 0 and len(digs) > 1 and digs[-1] == 0:
        digs.pop()
        exp += 1
    if not digs:
        digs = [0]
    text = format(decimal.Decimal((0, tuple(digs), exp)), "f")
    return ("-" if sign else "") + text


def number_text(n: Num) -> str:
    """big.Float.Text('f', -1) of the cty number go-cty holds for ``n``.

    ints are exact; a float is a 53-bit number, so its shortest round-trip digits
    (Python's ``repr``) are what Go prints; a Decimal is held at 512 bits by go-cty,
    which prints the decimal itself for any realistic precision.
    """
    if isinstance(n, bool):
        raise TypeError("bool is not a number")
    if isinstance(n, int):
        return str(n)
    if isinstance(n, float):
        if math.isinf(n):
            return "+Inf" if n > 0 else "-Inf"
        return _float_text(n)
    if n.is_infinite():
        return "+Inf" if n > 0 else "-Inf"
    return _decimal_f(n)


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (``%q``), as go-cty uses for set hashing."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable() and code != 0x7F:
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])  # fmt: skip
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_G10 = decimal.Context(prec=10, rounding=decimal.ROUND_HALF_EVEN, Emax=decimal.MAX_EMAX,
                       Emin=decimal.MIN_EMIN)  # fmt: skip


def go_float_string(n: Num) -> str:
    """big.Float.String() (``Text('g', 10)``) of the cty number for ``n``."""
    if isinstance(n, float) and math.isinf(n) or isinstance(n, decimal.Decimal) and n.is_infinite():
        return "+Inf" if n > 0 else "-Inf"
    d = decimal.Decimal(n)  # exact for int, float and Decimal
    neg = d.is_signed()
    prefix = "-" if neg else ""
    if d.is_zero():
        return prefix + "0"
    r = _G10.plus(abs(d))
    _, digits, exp = r.as_tuple()
    assert isinstance(exp, int)
    mant = "".join(map(str, digits)).rstrip("0")
    dexp = len(digits) + exp  # the decimal point position: value = 0.mant * 10**dexp
    prec = 10
    eprec = prec
    if eprec > len(mant) and len(mant) >= dexp:
        eprec = len(mant)
    e = dexp - 1
    if e < -4 or e >= eprec:
        frac = mant[1:]
        body = mant[0] + ("." + frac if frac else "")
        return f"{prefix}{body}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if prec > dexp:
        prec = len(mant)
    places = max(prec - dexp, 0)
    text = format(decimal.Decimal((0, tuple(int(c) for c in mant), dexp - len(mant))), "f")
    if "." in text:
        whole, _, fraction = text.partition(".")
    else:
        whole, fraction = text, ""
    fraction = (fraction + "0" * places)[:places]
    return prefix + whole + ("." + fraction if places else "")


def _digits(n: int, k: int) -> tuple[str, int]:
    """Decimal digits (no trailing zeros) and point position of ``n * 2**k``."""
    if n == 0:
        return "", 0
    if k >= 0:
        text = str(n << k)
        dexp = len(text)
    else:
        text = str(n * 5**-k)
        dexp = len(text) + k
    return text.rstrip("0"), dexp


def _round_up(mant: str, dexp: int, n: int) -> tuple[str, int]:
    if n < 0 or n >= len(mant):
        return mant, dexp
    while n > 0 and mant[n - 1] >= "9":
        n -= 1
    if n == 0:
        return "1", dexp + 1
    return mant[: n - 1] + chr(ord(mant[n - 1]) + 1), dexp


def _round_down(mant: str, dexp: int, n: int) -> tuple[str, int]:
    if n < 0 or n >= len(mant):
        return mant, dexp
    mant = mant[:n].rstrip("0")
    return mant, dexp if mant else 0


def _round(mant: str, dexp: int, n: int) -> tuple[str, int]:
    if n < 0 or n >= len(mant):
        return mant, dexp
    if mant[n] == "5" and n + 1 == len(mant):
        up = n > 0 and (int(mant[n - 1]) & 1) != 0
    else:
        up = mant[n] >= "5"
    return _round_up(mant, dexp, n) if up else _round_down(mant, dexp, n)


def _float_text(f: float) -> str:
    """big.Float.Text('f', -1) of ``new(big.Float).SetFloat64(f)``: a port of Go's
    roundShortest at 53-bit precision (it differs from Python's repr for subnormals,
    where big.Float keeps 53 bits)."""
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    m, e = math.frexp(abs(f))
    mant53 = int(m * (1 << 53))
    exp53 = e - 53
    # x = mant54 * 2**exp54 where the lsb of mant54 is half an ulp (Go's step 1)
    mant54, exp54 = mant53 << 1, exp53 - 1
    d, dexp = _digits(mant54, exp54)
    lower, lexp = _digits(mant54 - 1, exp54)
    upper, uexp = _digits(mant54 + 1, exp54)
    inclusive = mant53 % 2 == 0
    # Go compares the digits positionally without aligning the point positions.
    mant = d
    for i in range(len(mant)):
        lo = lower[i] if i < len(lower) else "0"
        mi = mant[i]
        up = upper[i] if i < len(upper) else "0"
        okdown = lo != mi or (inclusive and i + 1 == len(lower))
        okup = mi != up and (inclusive or ord(mi) + 1 < ord(up) or i + 1 < len(upper))
        if okdown and okup:
            mant, dexp = _round(mant, dexp, i + 1)
            break
        if okdown:
            mant, dexp = _round_down(mant, dexp, i + 1)
            break
        if okup:
            mant, dexp = _round_up(mant, dexp, i + 1)
            break
    text = format(decimal.Decimal((0, tuple(int(c) for c in mant), dexp - len(mant))), "f")
    return ("-" if f < 0 else "") + _decimal_f(decimal.Decimal(text))
