"""``wirestream convert``: Zeek TSV/JSON logs (plain or gzip) -> Avro container or Parquet files.

Avro files carry the log's schema as read from the file's own header (equal to the bundled
schema for a current Zeek log; derived for older or site logs), with the same value mapping as
the wire codecs. Parquet files come from the DataFrame reader, so their column types are the
DataFrame ones (``wirestream.schemas.frames``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm
from wirestream.schemas.avro import avro_schema
from wirestream.schemas.codec import avro_datum, record_of_datum, wire_schema
from wirestream.schemas.zeeklog.errors import ZeekLogError
from wirestream.schemas.zeeklog.reader import zeek_log_header

log = logging.getLogger(__name__)

FORMATS = ("avro", "parquet")
AVRO_CODECS = ("deflate", "null")


def output_name(path: Path, fmt: str) -> str:
    """``conn.log.gz`` -> ``conn.avro``: the log's name with the format's suffix."""
    name = path.name
    for suffix in (".gz", ".log"):
        name = name.removesuffix(suffix)
    return f"{name}.{fmt}"


def convert_to_avro(source: Path, target: Path, codec: str = "deflate") -> int:
    """Write one log as an Avro container file; returns the record count."""
    from wirestream.schemas.zeeklog import read_zeek_records

    zlog = read_zeek_records(source, strict=False)
    schema = avro_schema(zlog.header.schema)
    ws = wire_schema(schema)
    count = 0

    def data() -> Iterator[dict[str, Any]]:
        nonlocal count
        with tqdm(desc=source.name, unit="rec", leave=False) as bar:
            for record in zlog:
                count += 1
                bar.update()
                yield avro_datum(record, ws)

    tmp = target.with_name(target.name + ".part")
    with tmp.open("wb") as out:
        fastavro.writer(out, schema, data(), codec=codec)
    tmp.replace(target)
    _report_problems(source, zlog.problems, zlog.error)
    return count


def convert_to_parquet(source: Path, target: Path) -> int:
    """Write one log as a Parquet file via the typed DataFrame reader; returns the row count."""
    from wirestream.schemas.zeeklog.dataframe import read_zeek_log

    frame = read_zeek_log(source, strict=False)
    _report_problems(source, frame.attrs.get("zeek_problems", []), frame.attrs.get("zeek_error"))
    frame.attrs = {}  # problem objects are not Parquet metadata
    tmp = target.with_name(target.name + ".part")
    pq.write_table(_parquet_table(frame), tmp)
    tmp.replace(target)
    return len(frame)


def _parquet_table(frame: Any) -> pa.Table:
    """The frame as an Arrow table whose pandas metadata plain ``pd.read_parquet`` can read.

    pandas records list columns' dtype as ``list<item: T>[pyarrow]``, which its own reader then
    cannot parse; such columns are declared ``object`` (lists come back as arrays, and readers
    with ``dtype_backend="pyarrow"``, polars or Spark see the Arrow list type either way).
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = table.schema.pandas_metadata
    if not meta:
        return table
    for column in meta["columns"]:
        if str(column.get("numpy_type", "")).startswith("list<"):
            column["numpy_type"] = "object"
    return table.replace_schema_metadata(
        {**table.schema.metadata, b"pandas": json.dumps(meta).encode()}
    )


def read_avro_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An Avro file written by :func:`convert_to_avro` back to (schema, records)."""
    with path.open("rb") as fo:
        schema = json.loads(fastavro.reader(fo).metadata["avro.schema"])
    ws = wire_schema(schema)
    with path.open("rb") as fo:
        records = [record_of_datum(d, ws) for d in fastavro.reader(fo)]
    return schema, records


def _report_problems(source: Path, problems: list[Any], error: Any) -> None:
    if problems:
        log.warning("%s: %d line(s) skipped (they do not fit the header)", source, len(problems))
    if error is not None:
        log.warning("%s: %s (rows before it converted)", source, error)


@click.command("convert")
@click.argument(
    "logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--to", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created if missing); files are named after the logs.",
)
@click.option(
    "--codec",
    type=click.Choice(AVRO_CODECS),
    default="deflate",
    show_default=True,
    help="Avro block compression.",
)
def convert(logs: tuple[Path, ...], fmt: str, out: Path, codec: str) -> None:
    """Convert Zeek logs (TSV or JSON, plain or gzip) to Avro container or Parquet files."""
    targets = [out / output_name(path, fmt) for path in logs]
    clashes = sorted({t.name for t in targets if targets.count(t) > 1})
    if clashes:
        raise click.BadParameter(
            f"several inputs would write {', '.join(clashes)}; convert them into separate --out folders",
            param_hint="LOGS",
        )
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    for source, target in tqdm(list(zip(logs, targets, strict=True)), desc="logs", unit="file"):
        try:
            zeek_log_header(source)  # refuse a file that is no Zeek log before writing anything
            if fmt == "avro":
                count = convert_to_avro(source, target, codec)
            else:
                count = convert_to_parquet(source, target)
        except ZeekLogError as exc:  # not a Zeek log, or broken before its header ended
            raise click.ClickException(str(exc)) from exc
        total += count
        tqdm.write(f"{source} -> {target} ({count} records)")
    click.echo(f"{len(logs)} log(s), {total} records -> {out}", err=True)
