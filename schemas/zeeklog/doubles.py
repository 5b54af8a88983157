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


def _cached_power(index: int) -> tuple[int, int]:
    """10^(-348 + 8*index) as a 64-bit significand and binary exponent, rounded to nearest
    (the values of rapidjson's ``kCachedPowers_F``/``_E`` table, computed exactly)."""
    k = -348 + 8 * index
    num, den = (10**k, 1) if k >= 0 else (1, 10**-k)
    e = num.bit_length() - den.bit_length() - 64
    while True:
        q, r = divmod(num << -e, den) if e < 0 else divmod(num, den << e)
        if q >= 1 << 64:
            e += 1
        elif q < 1 << 63:
            e -= 1
        else:
            return (q + 1 if 2 * r >= (den if e < 0 else den << e) else q), e


_CACHED_POWERS = [_cached_power(i) for i in range(87)]
_MASK64 = (1 << 64) - 1


def _mul(af: int, ae: int, bf: int, be: int) -> tuple[int, int]:
    """``DiyFp::operator*``: upper 64 bits of the product, rounded by the 64th bit."""
    product = af * bf
    high = product >> 64
    if product & (1 << 63):
        high += 1
    return high, ae + be + 64


def _grisu_round(last: int, delta: int, rest: int, ten_kappa: int, wp_w: int) -> int:
    """``GrisuRound``: step the last digit down while that gets closer to the true value."""
    while (
        rest < wp_w
        and delta - rest >= ten_kappa
        and (rest + ten_kappa < wp_w or wp_w - rest > rest + ten_kappa - wp_w)
    ):
        last -= 1
        rest += ten_kappa
    return last


_POW10 = [10**i for i in range(20)]
_MIN_NORMAL = 2.2250738585072014e-308


def grisu2(value: float) -> tuple[str, int]:
    """rapidjson's Grisu2 for a positive finite double: (digits, K) with value ~= digits * 10^K.

    Nearly always the shortest round-trip digits, but not always: matching rapidjson (and so
    Zeek's JSON logs) byte for byte needs this exact algorithm, not Python's ``repr``. Digit
    generation is done in bulk (same stopping rule as ``DigitGen``, fewer Python steps).
    """
    if value >= _MIN_NORMAL:
        mantissa, exponent = math.frexp(value)
        f, e = int(mantissa * 9007199254740992.0), exponent - 53
    else:
        f, e = int(math.ldexp(value, 1074)), -1074
    # NormalizedBoundaries: the upper boundary normalised to 64 bits, the lower one aligned to it.
    upper = (f << 1) + 1
    shift = 54 - upper.bit_length() + 10
    pf, pe = upper << shift, e - 1 - shift
    mf = ((f << 2) - 1) << (shift - 1) if f == 1 << 52 else ((f << 1) - 1) << shift
    # GetCachedPower
    dk = (-61 - pe) * 0.30102999566398114 + 347
    k = int(dk)
    if dk - k > 0.0:
        k += 1
    index = (k >> 3) + 1
    big_k = 348 - (index << 3)
    cf, ce = _CACHED_POWERS[index]
    norm = 64 - f.bit_length()
    wf = _mul(f << norm, 0, cf, 0)[0]
    wpf, wpe = _mul(pf, pe, cf, ce)
    wmf = _mul(mf, 0, cf, 0)[0] + 1
    wpf -= 1
    # DigitGen
    delta = wpf - wmf
    s = -wpe
    one_f = 1 << s
    wp_w = wpf - wf
    p1, p2 = wpf >> s, wpf & (one_f - 1)
    lead = str(p1) if p1 else ""
    kappa = min(len(lead), 9) if p1 else 1
    if len(lead) > kappa:  # rapidjson's digit counter stops at 9; it never sees 10 digits
        raise ValueError(f"grisu2: integral part {p1} too long")
    for kappa_left in range(kappa - 1, -1, -1):
        rest = ((p1 % _POW10[kappa_left]) << s) + p2
        if rest <= delta:
            used = len(lead) - kappa_left
            digits = lead[:used].lstrip("0")
            last = _grisu_round(int(digits[-1]), delta, rest, _POW10[kappa_left] << s, wp_w)
            return digits[:-1] + str(last), big_k + kappa_left
    j = 0
    while True:
        j += 1
        scaled = p2 * _POW10[j] if j < 20 else p2 * 10**j
        rest = scaled & (one_f - 1)
        if rest < delta * (_POW10[j] if j < 20 else 10**j):
            break
    digits = (lead + f"{scaled >> s:0{j}d}").lstrip("0")
    scale = _POW10[j] if j < 20 else 0
    last = _grisu_round(int(digits[-1]), delta * 10**j, rest, one_f, (wp_w * scale) & _MASK64)
    return digits[:-1] + str(last), big_k - j


def format_json_double(value: float) -> str | None:
    """A double as rapidjson's ``Writer::Double`` prints it (``None`` for inf/nan -> JSON null).

    Grisu2 digits, then rapidjson's ``Prettify``: plain decimals for exponents up to 21,
    ``0.000…`` down to 1e-6, else ``d.ddde-x`` (no ``+``).
    """
    if not math.isfinite(value):
        return None
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, k = grisu2(abs(value))
    length = len(digits)
    kk = length + k  # 10^(kk-1) <= value < 10^kk
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
