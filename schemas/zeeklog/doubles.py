"""How Zeek prints numbers: the exact text of doubles, times and intervals in TSV and JSON."""

from __future__ import annotations

import math


def format_time(value: float) -> str:
    """``time``/``interval`` in TSV: ``std::to_chars(fixed, 6)``, trailing zeros kept."""
    return f"{value:.6f}"


def format_double(value: float) -> str:
    """``double`` in TSV: Zeek's ``util::double_to_str(d, 6, no_exp=true)`` plus ``ODesc``'s ``.0``.

    Fixed with 6 decimals, trailing zeros (and a bare ``.``) dropped, then ``.0`` appended when the
    value is within 1e-9 of an integer: ``1.0``, ``0.1234``, ``-0.0`` for tiny negatives, ``0.0``
    for -0.0, ``inf``/``nan``, and every digit of 1.79e308.
    """
    if value != value:
        return "nan"
    if value < 0:
        sign, magnitude = "-", -value
    else:
        sign, magnitude = "", value + 0.0  # -0.0 prints as 0
    text = f"{magnitude:.6f}"
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text = text[:-1]
    if math.isfinite(value) and abs(value - round(value)) < 1e-9:
        text += ".0"
    return sign + text


def format_json_double(value: float) -> str | None:
    """A double as rapidjson's ``Writer::Double`` prints it (``None`` for inf/nan -> JSON null).

    Shortest round-trip digits, then rapidjson's ``Prettify``: plain decimals for exponents up to
    21, ``0.000…`` down to 1e-6, else ``d.ddde±x`` without ``+``. rapidjson uses Grisu2, which in
    rare cases emits one more digit than Python's shortest ``repr``.
    """
    if not math.isfinite(value):
        return None
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(float(value))
    if "e" not in text and "n" not in text:
        return text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text)
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0") or "0"
    if frac_part == "0":
        digits = int_part
    # value = 0.<digits> * 10^kk
    kk = exponent + len(int_part)
    length = len(digits)
    k = kk - length
    if k >= 0 and kk <= 21:
        body = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        body = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        body = "0." + "0" * (-kk) + digits
    elif length == 1:
        body = digits + "e" + str(kk - 1)
    else:
        body = digits[0] + "." + digits[1:] + "e" + str(kk - 1)
    return sign + body
