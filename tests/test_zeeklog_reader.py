"""Reading real Zeek logs: gzip by magic, truncated gzip, header-only, misfit lines, JSON, old Bro."""

from __future__ import annotations

import gzip
import io
import logging

import pytest
from wirestream.schemas.zeek_types import zeek_log_schemas
from wirestream.schemas.zeeklog import (
    ZeekLogError,
    ZeekLogTruncatedError,
    ZeekLogWriter,
    read_zeek_records,
)

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tt\n"
    "#open\t2020-01-01-00-00-00\n#fields\tts\tn\ts\tv\n#types\ttime\tcount\tstring\tvector[string]\n"
)


def test_conn_log_header_and_records(shared):
    log = read_zeek_records(shared / "samples/zeek-logs/tsv-2014/conn.log")
    assert log.header.path == "conn"
    assert log.header.dialect.separator == "\t"
    assert log.header.open == "2014-04-03-10-08-27"
    assert str(log.header.types[log.header.fields.index("tunnel_parents")]) == "set[string]"
    assert log.header.type_names[-1] == "table[string]"  # as written by old Bro
    rows = log.to_list()
    assert len(rows) == 360
    first = rows[0]
    assert first["ts"] == 1379288667.706265 and first["id.orig_p"] == 1032
    assert first["local_orig"] is None and first["tunnel_parents"] == []
    assert log.header.close == "2014-04-03-10-08-28"
    assert not log.problems


def test_gzip_is_found_by_magic_not_name(shared, tmp_path):
    plain = read_zeek_records(shared / "samples/zeek-logs/tsv-2014/dhcp.log").to_list()
    renamed = tmp_path / "dhcp.txt"
    renamed.write_bytes((shared / "samples/zeek-logs/tsv-2014/dhcp.log.gz").read_bytes())
    assert read_zeek_records(renamed).to_list() == plain


def test_truncated_gzip_keeps_rows_before_the_break(shared, caplog):
    path = shared / "samples/zeek-logs/tsv-2014/http.log.corrupt.gz"
    with pytest.raises(ZeekLogTruncatedError) as info:
        read_zeek_records(path).to_list()
    err = info.value
    assert err.rows_read == 150 and len(err.records) == 150
    full = read_zeek_records(shared / "samples/zeek-logs/tsv-2014/http.log.gz").to_list()
    assert err.records == full[:150]
    lenient = read_zeek_records(path, strict=False)
    assert len(lenient.to_list()) == 150
    assert isinstance(lenient.error, ZeekLogTruncatedError)


def test_header_only_log_has_columns_and_no_rows(shared):
    log = read_zeek_records(shared / "samples/zeek-logs/tsv-2014/http_empty.log")
    assert log.to_list() == []
    assert len(log.header.fields) == 27 and log.header.close == "2014-04-03-10-08-28"


def test_separator_line_with_tab_and_no_close(shared):
    log = read_zeek_records(shared / "samples/zeek-logs/tsv-2014/conn_date_issue.log")
    rows = log.to_list()
    assert len(rows) == 3 and log.header.close is None and not log.problems
    assert rows[2]["duration"] == 1.235504


def test_bro22_table_and_vector_of_interval(shared):
    log = read_zeek_records(shared / "samples/zeek-logs/tsv-bro2.2/dns.log")
    names = log.header.fields
    rows = log.to_list()
    answers = [r["TTLs"] for r in rows if r["TTLs"]]
    assert str(log.header.types[names.index("TTLs")]) == "vector[interval]"
    assert all(isinstance(t, float) for ttl in answers for t in ttl)


def test_lines_that_do_not_fit_are_reported_not_fatal(caplog):
    body = "1.0\t1\ta\tx,y\n2.0\t2\tb\n3.0\tminus\tc\t-\n4.0\t4\t(empty)\t(empty)\n"
    with caplog.at_level(logging.WARNING):
        log = read_zeek_records(io.BytesIO((HEADER + body).encode()))
        rows = log.to_list()
    assert [r["n"] for r in rows] == [1, 4]
    assert rows[1]["s"] == "" and rows[1]["v"] == [] and rows[0]["v"] == ["x", "y"]
    assert [(p.line_number, p.reason.split(":")[0]) for p in log.problems] == [
        (10, "3 fields, header has 4"),
        (11, "invalid literal for int() with base 10"),
    ]
    assert "line 10 skipped" in caplog.text


def test_json_log_types_from_known_schema_and_values(shared):
    log = read_zeek_records(shared / "samples/zeek-logs/json-2019/conn.log")
    types = dict(zip(log.header.fields, map(str, log.header.types), strict=True))
    assert (
        types["ts"] == "time" and types["id.orig_p"] == "port" and types["duration"] == "interval"
    )
    rows = log.to_list()
    assert rows and rows[0]["uid"] == "CH53301MTU21BMj2Bj"
    assert all(set(r) == set(log.header.fields) for r in rows)  # absent keys are unset (None)


def test_json_log_with_schema_given():
    schema = zeek_log_schemas()["conn"]
    data = b'{"ts":1.5,"uid":"C1","id.orig_h":"1.2.3.4"}\n'
    log = read_zeek_records(io.BytesIO(data), schema=schema)
    (row,) = log.to_list()
    assert log.header.fields == tuple(schema.names)
    assert row["ts"] == 1.5 and row["service"] is None


def test_names_only_tsv_uses_known_types():
    data = b"uid\torig_pkts\tconn_state\nC1\t3\tSF\n"
    (row,) = read_zeek_records(io.BytesIO(data)).to_list()
    assert row == {"uid": "C1", "orig_pkts": 3, "conn_state": "SF"}


@pytest.mark.parametrize(
    "data",
    [
        b"# wirestream\n\nSome prose, not a log.\n",
        b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00",  # a pcap file header
        b"ts\tnot a name\n1.0\tx\n",
    ],
)
def test_text_that_is_not_a_log_is_refused(tmp_path, data):
    """A first line that is no header and no column names is no log (for commands given files)."""
    from wirestream.schemas.zeeklog.reader import zeek_log_header

    path = tmp_path / "x.log"
    path.write_bytes(data)
    with pytest.raises(ZeekLogError, match="not a Zeek log"):
        zeek_log_header(path)
    path.write_bytes(b"ts\tid.orig_h\n1.0\t10.0.0.1\n")
    assert zeek_log_header(path).fields == ("ts", "id.orig_h")


def test_writer_output_reads_back(tmp_path):
    schema = zeek_log_schemas()["conn"]
    path = tmp_path / "conn.log.gz"
    rec = {
        "ts": 1.25,
        "uid": "C1",
        "id.orig_h": "10.0.0.1",
        "id.orig_p": 5,
        "proto": "tcp",
        "service": "#x",
        "tunnel_parents": ["a,b", ""],
        "local_orig": False,
    }
    with ZeekLogWriter(path, schema, gzip_level=6, open_time=0) as writer:
        writer.write(rec)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    (row,) = read_zeek_records(path).to_list()
    assert {k: row[k] for k in rec} == rec
    assert gzip.decompress(path.read_bytes()).decode().splitlines()[-1].startswith("#close\t")


def test_empty_and_garbage_files_raise():
    with pytest.raises(ZeekLogError):
        read_zeek_records(io.BytesIO(b""))
    with pytest.raises(ZeekLogError):
        read_zeek_records(io.BytesIO(b"#separator \\x09\n#path\tx\n1\t2\n"))


def test_every_json_sample_reads_cleanly_and_survives_a_rewrite(shared):
    """2019 JSON logs (an older writer: 17-digit doubles, so not byte-identical) keep every value."""
    from wirestream.schemas.zeeklog.roundtrip import rewrite_zeek_log

    paths = sorted((shared / "samples/zeek-logs/json-2019").glob("*.log"))
    assert len(paths) >= 15
    for path in paths:
        log = read_zeek_records(path)
        rows = log.to_list()
        assert rows and not log.problems, path
        again = read_zeek_records(
            io.BytesIO(rewrite_zeek_log(path.read_bytes())), schema=log.header.schema
        )
        assert again.to_list() == rows, path
