"""Benchmark: the Avro wire codecs vs JSON lines and bare fastavro, on real conn records.

Records come from the tsv-2014 conn.log sample (repeated to ``--records``). Each contender runs
in this process, one after another, best of ``--repeat``; printed side by side as records/s,
ratio to JSON and bytes per record:

- ``json``: ``json.dumps(record).encode()`` / ``json.loads`` (what a JSON-lines pipeline pays);
- ``fastavro bare``: ``schemaless_writer``/``schemaless_reader`` on values already in Avro form
  (the floor our conversions and framing add to);
- ``wirestream``: ``encode_many``/``decode_many`` (record contract <-> single-object messages).

Run: ``.venv/bin/python benchmarks/bench_avro_codec.py [--records 20000]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

SHARED = Path(os.environ.get("WIRESTREAM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLE = SHARED / "samples/zeek-logs/tsv-2014/conn.log"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import fastavro
    from wirestream.schemas.avro import avro_schema
    from wirestream.schemas.codec import decode_many, encode_many, wire_schema
    from wirestream.schemas.store import SchemaCache
    from wirestream.schemas.zeeklog import read_zeek_records

    zlog = read_zeek_records(SAMPLE)
    sample = list(zlog)
    records = (sample * (args.records // len(sample) + 1))[: args.records]
    ws = wire_schema(avro_schema(zlog.header.schema))
    store = SchemaCache([ws])
    n = len(records)

    json_msgs = [json.dumps(r).encode() for r in records]
    datums = [ws.to_avro(r) for r in records]

    def bare_encode() -> list[bytes]:
        out, buf = [], io.BytesIO()
        for d in datums:
            buf.seek(0)
            buf.truncate()
            fastavro.schemaless_writer(buf, ws.parsed, d)
            out.append(buf.getvalue())
        return out

    bare_msgs = bare_encode()
    avro_msgs = encode_many(records, ws)
    assert decode_many(avro_msgs, store)[0] == {k: records[0].get(k) for k in ws.zeek_names}

    rows = [
        (
            "json",
            best(lambda: [json.dumps(r).encode() for r in records], args.repeat),
            best(lambda: [json.loads(m) for m in json_msgs], args.repeat),
            sum(map(len, json_msgs)) / n,
        ),
        (
            "fastavro bare",
            best(bare_encode, args.repeat),
            best(
                lambda: [fastavro.schemaless_reader(io.BytesIO(m), ws.parsed) for m in bare_msgs],
                args.repeat,
            ),
            sum(map(len, bare_msgs)) / n,
        ),
        (
            "wirestream",
            best(lambda: encode_many(records, ws), args.repeat),
            best(lambda: decode_many(avro_msgs, store), args.repeat),
            sum(map(len, avro_msgs)) / n,
        ),
    ]
    json_enc, json_dec = rows[0][1], rows[0][2]
    print(f"{n} conn records, best of {args.repeat}; load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'':<14} {'encode rec/s':>13} {'x json':>7} {'decode rec/s':>13} {'x json':>7} {'bytes/rec':>10}"
    )
    for name, enc, dec, size in rows:
        print(
            f"{name:<14} {n / enc:>13,.0f} {json_enc / enc:>7.2f} "
            f"{n / dec:>13,.0f} {json_dec / dec:>7.2f} {size:>10.1f}"
        )


if __name__ == "__main__":
    main()
