"""The TSV writer formats a log's first rows by joining field formatters and compiles its line
formatter only once the log has enough rows: both must write exactly the same text."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from wirestream.schemas.zeek_types import Column, LogSchema, parse_type
from wirestream.schemas.zeeklog import writer as writer_module
from wirestream.schemas.zeeklog.tsv import (
    TsvDialect,
    field_formatter,
    joined_line_formatter,
    line_formatter,
)

TYPES = ["time", "string", "addr", "port", "count", "interval", "bool", "double", "set[string]"]
VALUES = {
    "time": st.one_of(st.none(), st.floats(0, 2e9)),
    "string": st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["-", "(empty)", "#x"])),
    "addr": st.one_of(st.none(), st.sampled_from(["10.0.0.1", "::1", "fe80::1"])),
    "port": st.one_of(st.none(), st.integers(0, 65535)),
    "count": st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    "interval": st.one_of(st.none(), st.floats(-1e6, 1e6)),
    "bool": st.one_of(st.none(), st.booleans()),
    "double": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    "set[string]": st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=3)),
}
COLUMNS = [(f"c{i}", parse_type(t)) for i, t in enumerate(TYPES)]
RECORDS = st.fixed_dictionaries(
    {name: VALUES[t] for (name, _), t in zip(COLUMNS, TYPES, strict=True)}
)


@given(record=RECORDS)
def test_joined_equals_compiled_and_field_formatters(record):
    for dialect in (TsvDialect(), TsvDialect(separator="1", set_separator="-", unset_field="x")):
        expected = dialect.separator.join(
            field_formatter(zt, dialect)(record[n]) for n, zt in COLUMNS
        )
        assert joined_line_formatter(COLUMNS, dialect)(record) == expected
        assert line_formatter(COLUMNS, dialect)(record) == expected


@given(records=st.lists(RECORDS, min_size=1, max_size=12))
def test_writer_output_is_the_same_before_and_after_the_switch(records):
    schema = LogSchema("t", tuple(Column(n, zt) for n, zt in COLUMNS))

    def write(compile_after: int) -> bytes:
        old = writer_module._COMPILE_AFTER_ROWS
        writer_module._COMPILE_AFTER_ROWS = compile_after
        try:
            buf = io.BytesIO()
            w = writer_module.ZeekLogWriter(buf, schema, open_time="t0")
            for r in records:
                w.write(r)
            w.close("t1")
            return buf.getvalue()
        finally:
            writer_module._COMPILE_AFTER_ROWS = old

    never = write(10**9)
    assert write(0) == never
    assert write(5) == never
