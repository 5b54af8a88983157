"""Read a log and write it back with the settings it was written with: the fidelity check."""

from __future__ import annotations

import io

from wirestream.schemas.zeek_types import LogSchema
from wirestream.schemas.zeeklog.json_lines import JsonOptions
from wirestream.schemas.zeeklog.reader import read_zeek_records
from wirestream.schemas.zeeklog.writer import ZeekLogWriter


def rewrite_zeek_log(
    data: bytes,
    *,
    schema: LogSchema | None = None,
    json_options: JsonOptions | None = None,
    utf8: bool | None = None,
) -> bytes:
    """Parse ``data`` into records and write them again; equal bytes mean nothing was lost."""
    log = read_zeek_records(io.BytesIO(data), schema=schema, json_options=json_options, utf8=utf8)
    records = log.to_list()
    header = log.header
    out = io.BytesIO()
    writer = ZeekLogWriter(
        out,
        header.schema,
        header.format,
        open_time=header.open,
        path=header.path,
        dialect=header.dialect,
        json_options=header.json or JsonOptions(),
        tsv_names_only=not header.has_meta,
        write_open=header.open is not None,
        type_names=header.type_names,
    )
    writer.write_all(records)
    writer.close(header.close, write_close=header.close is not None)
    return out.getvalue()
