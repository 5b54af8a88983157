"""``wirestream convert``: Zeek logs -> Avro container / Parquet files, read back equal."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from wirestream.schemas.avro import bundled_avro_schema
from wirestream.schemas.convert_cli import output_name, read_avro_file
from wirestream.schemas.zeeklog import read_zeek_records
from wirestream.schemas.zeeklog.dataframe import read_zeek_log

from wirestream.cli import cli

pytestmark = pytest.mark.timeout(120)


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_output_names():
    from pathlib import Path

    assert output_name(Path("a/conn.log.gz"), "avro") == "conn.avro"
    assert output_name(Path("dns.log"), "parquet") == "dns.parquet"
    assert output_name(Path("weird"), "avro") == "weird.avro"


def test_avro_files_hold_every_record(shared, tmp_path):
    logs = shared / "samples/zeek-logs"
    sources = [
        logs / "tsv-2014/conn.log",  # Bro 2.x header: table[string], no later columns
        logs / "tsv-2014/http.log.gz",
        logs / "json-2019/dns.log",
        logs / "tsv-2014/app_stats.log",  # a site log Zeek does not ship
    ]
    run("convert", *map(str, sources), "--to", "avro", "--out", str(tmp_path))
    for source in sources:
        schema, records = read_avro_file(tmp_path / output_name(source, "avro"))
        original = list(read_zeek_records(source))
        assert len(records) == len(original) > 0
        for got, want in zip(records, original, strict=True):
            assert got == {name: want.get(name) for name in got}
    app_stats, _ = read_avro_file(tmp_path / "app_stats.avro")
    assert app_stats["name"] == "app_stats"
    conn, _ = read_avro_file(tmp_path / "conn.avro")
    assert conn != bundled_avro_schema("conn")  # the file's own (older) columns


def test_parquet_matches_the_dataframe_reader(shared, tmp_path):
    source = shared / "samples/zeek-logs/tsv-2014/dns.log"
    run("convert", str(source), "--to", "parquet", "--out", str(tmp_path))
    got = pd.read_parquet(tmp_path / "dns.parquet", dtype_backend="pyarrow")
    want = read_zeek_log(source)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    assert got["ts"].tolist() == want["ts"].tolist()
    assert got["answers"].tolist() == want["answers"].tolist()
    plain = pd.read_parquet(tmp_path / "dns.parquet")  # plain pandas reads it too
    assert str(plain["ts"].dtype) == str(want["ts"].dtype)


def test_clashing_outputs_are_refused(shared, tmp_path):
    logs = shared / "samples/zeek-logs"
    result = CliRunner().invoke(
        cli,
        ["convert", str(logs / "tsv-2014/dns.log"), str(logs / "json-2019/dns.log")]
        + ["--to", "avro", "--out", str(tmp_path)],
    )
    assert result.exit_code != 0 and "separate --out" in result.output


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_files_that_are_not_logs_are_one_line_errors(tmp_path, fmt):
    import gzip

    cases = {
        "notes.md": (b"# Notes\n\ntext\n", "not a Zeek log"),
        "empty.log": (b"", "empty file"),
        "cut.log.gz": (gzip.compress(b"#separator \\x09\n")[:12], "broken before the header"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        result = CliRunner().invoke(
            cli, ["convert", str(tmp_path / name), "--to", fmt, "--out", str(tmp_path / "o")]
        )
        assert result.exit_code == 1, (name, result.output)
        assert isinstance(result.exception, SystemExit)
        assert f"Error: {name}: " in result.output and message in result.output
