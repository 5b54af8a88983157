"""Zeek logs as typed DataFrames: dtype decisions, unset as NA, fast reader == exact reader."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from wirestream.schemas.frames import (
    frame_from_records,
    pandas_dtype,
)
from wirestream.schemas.zeek_types import Column, LogSchema, parse_type, zeek_log_schemas
from wirestream.schemas.zeeklog import ZeekLogTruncatedError, read_zeek_records
from wirestream.schemas.zeeklog.dataframe import _read_fast, read_zeek_log

SAMPLES = "samples/zeek-logs"
HEADER = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"


def read_both_ways(path: Path) -> pd.DataFrame:
    """The fast reader's frame, after checking it equals the exact reader's to the bit."""
    frame = read_zeek_log(path)
    pd.testing.assert_frame_equal(frame, read_zeek_log(path, exact=True), check_exact=True)
    return frame


@pytest.mark.parametrize(
    ("type_name", "name", "dtype"),
    [
        ("time", "ts", "datetime64[us, UTC]"),
        ("interval", "duration", "timedelta64[us]"),
        ("count", "orig_bytes", "UInt64"),
        ("int", "x", "Int64"),
        ("port", "id.orig_p", "UInt16"),
        ("double", "score", "Float64"),
        ("bool", "local_orig", "boolean"),
        ("addr", "id.orig_h", "string"),
        ("string", "uid", "string"),
        ("string", "service", "category"),
        ("enum", "proto", "category"),
        ("set[string]", "tunnel_parents", "list<item: string>[pyarrow]"),
        ("vector[interval]", "TTLs", "list<item: duration[us]>[pyarrow]"),
    ],
)
def test_pandas_dtype(type_name, name, dtype):
    assert str(pandas_dtype(parse_type(type_name), name)) == dtype


def test_unset_is_na_never_zero_or_false():
    schema = zeek_log_schemas()["conn"]
    frame = frame_from_records(
        [
            {
                "ts": 1.0,
                "uid": "C1",
                "local_orig": None,
                "orig_bytes": None,
                "tunnel_parents": None,
            },
            {"ts": 2.5, "uid": "C2", "local_orig": False, "orig_bytes": 0, "tunnel_parents": []},
        ],
        schema,
    )
    assert frame["local_orig"].isna().tolist() == [True, False]
    assert frame["local_orig"].iloc[1] is False or frame["local_orig"].iloc[1] == False  # noqa: E712
    assert frame["orig_bytes"].isna().tolist() == [True, False] and frame["orig_bytes"].iloc[1] == 0
    assert frame["tunnel_parents"].isna().tolist() == [True, False]
    assert list(frame["tunnel_parents"].iloc[1]) == []
    assert frame["service"].isna().all() and frame["duration"].isna().all()
    assert frame["ts"].iloc[1] == pd.Timestamp("1970-01-01 00:00:02.5", tz="UTC")
    assert list(frame.columns) == schema.names


def test_times_are_exact_microseconds(shared):
    frame = read_zeek_log(shared / SAMPLES / "tsv-2014/conn.log")
    assert frame["ts"].iloc[0] == pd.Timestamp("2013-09-15 23:44:27.706265", tz="UTC")
    assert frame["duration"].iloc[0] == pd.Timedelta(microseconds=447460)


def test_fast_reader_equals_exact_reader_on_every_tsv_sample(shared):
    paths = sorted((shared / SAMPLES).glob("tsv-*/*"))
    assert len(paths) >= 25
    for path in paths:
        fast = read_zeek_log(path, strict=False)
        exact = read_zeek_log(path, strict=False, exact=True)
        pd.testing.assert_frame_equal(fast, exact, check_exact=True, obj=str(path))


def test_fast_reader_equals_exact_reader_on_reference_logs(shared, tmp_path):
    """Zeek 9.1 logs with every type (masked times given a value, as in the round-trip test)."""
    checked = 0
    for path in sorted((shared / "zeek-ref").glob("*/*/baseline/*.log")):
        data = (
            path.read_bytes().split(b"\n", 1)[1].replace(b"XXXXXXXXXX.XXXXXX", b"1234567890.123456")
        )
        if not data.startswith(b"#separator"):
            continue
        copy = tmp_path / f"{checked}.log"
        copy.write_bytes(data)
        fast = read_zeek_log(copy)
        exact = read_zeek_log(copy, exact=True)
        pd.testing.assert_frame_equal(fast, exact, check_exact=True, obj=str(path))
        checked += 1
    assert checked >= 80


def test_frame_from_records_matches_file_reader(shared):
    path = shared / SAMPLES / "tsv-bro2.2/dns.log"
    log = read_zeek_records(path)
    from_records = frame_from_records(log.to_list(), log.header.schema)
    pd.testing.assert_frame_equal(
        read_zeek_log(path), from_records, check_exact=True, check_like=False
    )


def test_escapes_and_empty_values_in_frames(tmp_path):
    log = tmp_path / "x.log"
    log.write_text(
        HEADER + "#path\tx\n#fields\ts\tss\td\n#types\tstring\tset[string]\tdouble\n"
        "a\\x09b\\\\c\t\\x2c,(empty)\t-0.0\n(empty)\t(empty)\t5\n-\t-\t-\n\\xff\tx\t1.5\n"
    )
    frame = read_both_ways(log)
    assert frame["s"].tolist()[:2] == ["a\tb\\c", ""] and pd.isna(frame["s"].iloc[2])
    assert frame["s"].iloc[3] == "\\xff"  # a byte that is not UTF-8 shows as Zeek writes it
    assert list(frame["ss"].iloc[0]) == [",", ""] and list(frame["ss"].iloc[1]) == []
    assert frame["d"].iloc[0] < 0 and frame["d"].iloc[3] == 1.5


def test_misfit_lines_fall_back_to_the_exact_reader_and_are_reported(shared, tmp_path):
    text = (shared / SAMPLES / "tsv-2014/dns.log").read_text().splitlines(keepends=True)
    text.insert(10, "broken\tline\n")
    path = tmp_path / "dns.log"
    path.write_text("".join(text))
    frame = read_zeek_log(path)
    problems = frame.attrs["zeek_problems"]
    assert len(problems) == 1 and problems[0].line_number == 11
    assert len(frame) == len(read_zeek_log(shared / SAMPLES / "tsv-2014/dns.log"))


def test_truncated_gzip_frame(shared):
    path = shared / SAMPLES / "tsv-2014/http.log.corrupt.gz"
    with pytest.raises(ZeekLogTruncatedError) as info:
        read_zeek_log(path)
    assert len(info.value.frame) == 150
    lenient = read_zeek_log(path, strict=False)
    assert len(lenient) == 150 and "broke off" in lenient.attrs["zeek_error"]
    full = read_zeek_log(shared / SAMPLES / "tsv-2014/http.log.gz")
    pd.testing.assert_frame_equal(lenient, full.iloc[:150])


def test_header_only_log(shared):
    frame = read_zeek_log(shared / SAMPLES / "tsv-2014/http_empty.log")
    assert len(frame) == 0 and len(frame.columns) == 27
    assert (
        str(frame["ts"].dtype) == "datetime64[us, UTC]"
        and str(frame["status_code"].dtype) == "UInt64"
    )


def test_json_log_frame(shared):
    frame = read_zeek_log(shared / SAMPLES / "json-2019/dns.log")
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert (
        str(frame["id.resp_p"].dtype) == "UInt16" and str(frame["qtype_name"].dtype) == "category"
    )
    assert frame["rtt"].dtype == "timedelta64[us]"


def test_gzip_by_magic(shared, tmp_path):
    renamed = tmp_path / "conn.data"
    with gzip.open(renamed, "wb") as out, open(shared / SAMPLES / "tsv-2014/conn.log", "rb") as src:
        shutil.copyfileobj(src, out)
    pd.testing.assert_frame_equal(
        read_zeek_log(renamed), read_zeek_log(shared / SAMPLES / "tsv-2014/conn.log")
    )


def test_frame_from_records_empty_schema_columns():
    schema = LogSchema(
        "t", (Column("a", parse_type("set[count]")), Column("b", parse_type("bool")))
    )
    frame = frame_from_records([], schema)
    assert list(frame.columns) == ["a", "b"] and len(frame) == 0


# --- correctness against zat (not timing: that is benchmarks/bench_read_zeek_log.py) ----------


def test_zat_turns_unset_into_false_and_zero_where_we_keep_na(shared):
    zat_reader = pytest.importorskip("zat.zeek_log_reader")
    path = shared / SAMPLES / "tsv-2014/conn_date_issue.log"
    zat_rows = list(zat_reader.ZeekLogReader(str(path)).readrows())
    ours = read_zeek_log(path)
    # Row 0: local_orig, duration and orig_bytes are "-" (unset) in the log.
    assert Path(path).read_text().splitlines()[8].split("\t")[12] == "-"
    assert zat_rows[0]["local_orig"] is False and zat_rows[0]["orig_bytes"] == 0
    assert ours["local_orig"].isna().iloc[0] and ours["orig_bytes"].isna().iloc[0]
    assert ours["duration"].isna().iloc[0] and ours["service"].isna().iloc[0]


def test_zat_frames_keep_zeek_markers_and_text_bools(shared):
    ltd = pytest.importorskip("zat.log_to_dataframe")
    path = shared / SAMPLES / "tsv-2014/conn.log"
    zat = ltd.LogToDataFrame().create_dataframe(str(path), ts_index=False)
    ours = read_zeek_log(path)
    # zat: bools are the strings "T"/"F", an empty set is the literal text "(empty)", ts is naive.
    assert set(zat["tunnel_parents"].dropna().unique()) == {"(empty)"}
    assert ours["tunnel_parents"].map(len).eq(0).all()
    assert zat["ts"].dt.tz is None and str(ours["ts"].dtype) == "datetime64[us, UTC]"
    assert str(ours["local_orig"].dtype) == "boolean"


def test_category_column_with_escapes_and_two_spellings(tmp_path):
    log = tmp_path / "c.log"
    log.write_text(
        HEADER + "#path\tc\n#fields\tservice\tproto\n#types\tstring\tenum\n"
        "dns\ttcp\n\\x64ns\tudp\n(empty)\t-\n-\ttcp\n"
    )
    frame = read_both_ways(log)
    assert list(frame["service"].cat.categories) == ["", "dns"]
    assert frame["service"].tolist()[:3] == ["dns", "dns", ""] and pd.isna(frame["service"].iloc[3])


# --- property: whatever the writer writes, the fast reader reads exactly like the exact one -----

_FRAME_TYPES = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("n", "count"),
    ("i", "int"),
    ("d", "double"),
    ("ok", "bool"),
    ("tags", "set[string]"),
    ("ttls", "vector[interval]"),
    ("counts", "vector[count]"),
    ("flags", "vector[bool]"),
    ("ds", "vector[double]"),
    ("hosts", "set[addr]"),
    ("seen", "set[time]"),
]


def _zeek_value(type_name: str):
    from hypothesis import strategies as st

    text = st.one_of(
        st.text(max_size=6),
        st.sampled_from(["-", "(empty)", "", "a\\b", "x,y", "#", "\\x41", "é", "\t"]),
        st.binary(max_size=4).map(lambda b: b.decode("utf-8", "surrogateescape")),
    )
    finite = st.floats(min_value=-1e9, max_value=4e9, allow_nan=False)
    scalars = {
        "time": finite,
        "interval": finite,
        "string": text,
        "enum": st.sampled_from(["tcp", "udp", "icmp", "(empty)", "-", "\\x41"]),
        "addr": st.sampled_from(["10.0.0.1", "::1", "fe80::1"]),
        "port": st.integers(0, 65535),
        "count": st.integers(0, 2**64 - 1),
        "int": st.integers(-(2**63), 2**63 - 1),
        "double": st.floats(allow_nan=False, allow_infinity=True, width=64),
        "bool": st.booleans(),
    }
    if type_name.endswith("]"):
        inner = scalars[type_name.split("[")[1].rstrip("]")]
        return st.one_of(
            st.none(),
            st.lists(st.one_of(inner, st.none()) if "vector" in type_name else inner, max_size=3),
        )
    return st.one_of(st.none(), scalars[type_name])


def test_fast_reader_equals_exact_reader_on_generated_logs(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from wirestream.schemas.zeeklog import ZeekLogWriter

    schema = LogSchema("gen", tuple(Column(n, parse_type(t)) for n, t in _FRAME_TYPES))
    row = st.fixed_dictionaries({n: _zeek_value(t) for n, t in _FRAME_TYPES})

    @settings(
        max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.lists(row, min_size=1, max_size=8))
    def check(rows):
        path = tmp_path / "gen.log"
        with ZeekLogWriter(path, schema) as writer:
            writer.write_all(rows)
        fast = _read_fast(path, None)  # raises if it had to fall back: the test must cover it
        exact = read_zeek_log(path, exact=True)
        assert not exact.attrs["zeek_problems"]
        pd.testing.assert_frame_equal(fast, exact, check_exact=True)
        assert len(fast) == len(rows)

    check()


def test_crlf_log_reads_the_same_both_ways(shared, tmp_path):
    crlf = tmp_path / "conn.log"
    crlf.write_bytes((shared / SAMPLES / "tsv-2014/conn.log").read_bytes().replace(b"\n", b"\r\n"))
    fast = read_both_ways(crlf)
    pd.testing.assert_frame_equal(fast, read_zeek_log(shared / SAMPLES / "tsv-2014/conn.log"))
