"""The writer on its own: header lines, #open/#close, meta-prefix escape, formats, streaming."""

from __future__ import annotations

import io
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wirestream.schemas.zeek_types import Column, LogSchema, parse_type
from wirestream.schemas.zeeklog import (
    JsonOptions,
    TsvDialect,
    ZeekLogError,
    ZeekLogWriter,
    format_log_timestamp,
    read_zeek_records,
)
from wirestream.schemas.zeeklog.tsv import field_formatter, line_formatter

SCHEMA = LogSchema("test", (Column("data", parse_type("string")), Column("c", parse_type("count"))))


def written(**kwargs) -> str:
    out = io.BytesIO()
    writer = ZeekLogWriter(out, SCHEMA, open_time="2020-01-02-03-04-05", **kwargs)
    for data in ("Test1", "#Kaputt", None):
        writer.write({"data": data, "c": 42})
    writer.close("2020-01-02-03-04-06")
    return out.getvalue().decode()


def test_tsv_log_exactly_as_zeek_writes_it():
    # ascii-line-like-comment: a value starting with the meta prefix gets \x23.
    assert written() == (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#path\ttest\n#open\t2020-01-02-03-04-05\n#fields\tdata\tc\n#types\tstring\tcount\n"
        "Test1\t42\n\\x23Kaputt\t42\n-\t42\n#close\t2020-01-02-03-04-06\n"
    )


def test_custom_dialect_and_names_only():
    dialect = TsvDialect(
        separator="|", empty_field="EMPTY", unset_field="NOT-SET", meta_prefix="PREFIX<>"
    )
    text = written(dialect=dialect)
    assert text.startswith(
        "PREFIX<>separator |\nPREFIX<>set_separator|,\nPREFIX<>empty_field|EMPTY\n"
    )
    assert "NOT-SET|42" in text
    assert written(tsv_names_only=True) == "data\tc\nTest1\t42\n\\x23Kaputt\t42\n-\t42\n"


def test_json_lines():
    assert written(fmt="json") == '{"data":"Test1","c":42}\n{"data":"#Kaputt","c":42}\n{"c":42}\n'
    text = written(fmt="json", json_options=JsonOptions(include_unset=True))
    assert text.endswith('{"data":null,"c":42}\n')


def test_open_time_is_local_time_like_zeek():
    stamp = 1700000000
    assert format_log_timestamp(stamp) == time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(stamp))
    assert len(format_log_timestamp()) == 19


def test_streams_many_rows(tmp_path):
    path = tmp_path / "big.log"
    with ZeekLogWriter(path, SCHEMA) as writer:
        for i in range(50_000):
            writer.write({"data": f"row{i}", "c": i})
    rows = read_zeek_records(path).to_list()
    assert len(rows) == 50_000 and rows[-1] == {"data": "row49999", "c": 49999}


def test_errors():
    with pytest.raises(ZeekLogError):
        ZeekLogWriter(io.BytesIO(), SCHEMA, fmt="xml")
    writer = ZeekLogWriter(io.BytesIO(), SCHEMA)
    writer.close()
    with pytest.raises(ZeekLogError):
        writer.write({"data": "x"})


LINE_TYPES = [
    "string",
    "count",
    "int",
    "port",
    "time",
    "interval",
    "bool",
    "double",
    "addr",
    "set[string]",
    "vector[count]",
]
_values = {
    "string": st.one_of(
        st.none(), st.text(max_size=8), st.sampled_from(["-", "(empty)", "a\tb", "#x", "1.5"])
    ),
    "count": st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    "int": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "port": st.one_of(st.none(), st.integers(0, 65535)),
    "time": st.one_of(st.none(), st.floats(allow_nan=False)),
    "interval": st.one_of(st.none(), st.floats()),
    "bool": st.one_of(st.none(), st.booleans()),
    "double": st.one_of(st.none(), st.floats()),
    "addr": st.one_of(st.none(), st.ip_addresses().map(str)),
    "set[string]": st.one_of(st.none(), st.lists(st.text(max_size=4), max_size=3)),
    "vector[count]": st.one_of(
        st.none(), st.lists(st.one_of(st.none(), st.integers(0, 9)), max_size=3)
    ),
}


@pytest.mark.parametrize(
    "dialect", [TsvDialect(), TsvDialect(separator="1", set_separator="-", unset_field="x")]
)
@given(data=st.data())
def test_compiled_line_equals_field_formatters(dialect, data):
    columns = [(f"c{i}", parse_type(t)) for i, t in enumerate(LINE_TYPES)]
    record = {name: data.draw(_values[t]) for (name, _), t in zip(columns, LINE_TYPES, strict=True)}
    expected = dialect.separator.join(field_formatter(zt, dialect)(record[n]) for n, zt in columns)
    assert line_formatter(columns, dialect)(record) == expected
