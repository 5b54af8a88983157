"""Every record of every Zeek baseline and sample log survives Avro encode -> decode."""

from __future__ import annotations

import io
import math
from pathlib import Path

from wirestream.schemas.avro import avro_schema, bundled_avro_schema
from wirestream.schemas.codec import decode_many, encode_many, wire_schema
from wirestream.schemas.store import SchemaCache
from wirestream.schemas.zeeklog import read_zeek_records

MASKED_TIME = b"XXXXXXXXXX.XXXXXX"  # btest's mask of the first timestamp of a line


def log_files(shared: Path) -> list[Path]:
    cases = sorted((shared / "zeek-ref/cases").glob("*/baseline/*.log"))
    samples = sorted(p for p in (shared / "samples/zeek-logs").glob("*/*") if p.is_file())
    return cases + samples


def read(path: Path):
    """Header and records; btest's first line dropped and masked times given a real value."""
    data = path.read_bytes()
    if data.startswith(b"### BTest"):
        data = data.split(b"\n", 1)[1].replace(MASKED_TIME, b"1234567890.123456")
        source = io.BytesIO(data)
        source.name = path.name
    else:
        source = path
    log = read_zeek_records(source, strict=False)
    return log.header, list(log)


def same(expected, got, ztype) -> bool:
    if expected == got:
        return True
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    if ztype.scalar == "time" and expected is not None and got is not None:
        # Zeek's JSON may print sub-microsecond digits; Avro carries micros (the decided mapping)
        pairs = zip(expected, got, strict=True) if ztype.is_container else [(expected, got)]
        return all(abs(a - b) <= 0.5e-6 for a, b in pairs)
    return False


def test_every_baseline_record_round_trips(shared):
    total = exact = 0
    failures = []
    for path in log_files(shared):
        header, records = read(path)
        schema = avro_schema(header.schema)
        if header.format == "tsv" and header.path in {"conn", "dns", "http"}:
            known = bundled_avro_schema(header.path)
            if [f["zeek_name"] for f in known["fields"]] == list(header.fields):
                assert schema == known, path  # a current log's header gives the bundled schema
        ws = wire_schema(schema)
        decoded = decode_many(encode_many(records, ws), SchemaCache([ws]))
        types = dict(zip(header.fields, header.types, strict=True))
        for record, back in zip(records, decoded, strict=True):
            total += 1
            full = {name: record.get(name) for name in header.fields}
            if back == full:
                exact += 1
            elif not all(same(full[n], back[n], types[n]) for n in header.fields):
                failures.append((path, full, back))
            elif header.format == "tsv":
                failures.append((path, full, back))  # TSV times are micros: must be exact
    print(f"baseline records: {total}, exact {exact} ({exact / total:.2%})")
    assert not failures, failures[:3]
    assert total > 3000
    assert exact / total > 0.99
