"""Columns a Zeek log has only when a script or an option asks for them, and where they go.

Two kinds (``zeek_optional_columns.json``, generated from Zeek's field lists):

- *policy* columns: a policy script (``protocols/conn/vlan-logging``) extends the log's record
  with ``redef record ... += {...}``; the fields join the record's end, so the columns follow
  every base column, in the order the scripts are loaded.
- *filtered* columns: fields of the base record that the base script keeps out of the default
  log filter unless an option is set (``SSL::log_include_server_certificate_subject_issuer``
  adds ssl.log's subject and issuer). They keep their place in the record: right after the
  ``after`` column, in record order.

:func:`with_optional_columns` is the one place that lays them out. Regenerate the JSON with
``python -m wirestream.schemas.optional_columns --meta .../log_schemas_meta.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from wirestream.schemas.zeek_types import Column, LogSchema, parse_type

BUNDLED = Path(__file__).with_name("zeek_optional_columns.json")

# The filtered fields of Zeek 9's base/protocols/ssl/files.zeek (SSL::Info: subject, issuer,
# client_subject, client_issuer: string &log &optional), which Zeek's generated field lists
# name only in a note ("after client_cert_chain_fps ... before sni_matches_cert").
_SSL_SERVER = "SSL::log_include_server_certificate_subject_issuer"
_SSL_CLIENT = "SSL::log_include_client_certificate_subject_issuer"
FILTERED_FIELDS: dict[str, list[dict[str, str]]] = {
    "ssl": [
        {"name": "subject", "type": "string", "after": "client_cert_chain_fps", "option": _SSL_SERVER},
        {"name": "issuer", "type": "string", "after": "client_cert_chain_fps", "option": _SSL_SERVER},
        {"name": "client_subject", "type": "string", "after": "client_cert_chain_fps", "option": _SSL_CLIENT},
        {"name": "client_issuer", "type": "string", "after": "client_cert_chain_fps", "option": _SSL_CLIENT},
    ]
}  # fmt: skip


@dataclass(frozen=True)
class OptionalColumn:
    log: str
    column: Column
    script: str | None = None  # policy column: the script adding it ("protocols/conn/vlan-logging")
    option: str | None = None  # filtered column: the option that logs it
    after: str | None = None  # filtered column: the record field it follows


@cache
def optional_columns(path: Path = BUNDLED) -> dict[str, tuple[OptionalColumn, ...]]:
    """log -> its optional columns (filtered ones first, then policy ones), from the JSON."""
    raw = json.loads(path.read_text())
    out: dict[str, list[OptionalColumn]] = {}
    for log, cols in raw["filtered"].items():
        for c in cols:
            column = Column(c["name"], parse_type(c["type"]), True)
            out.setdefault(log, []).append(
                OptionalColumn(log, column, option=c["option"], after=c["after"])
            )
    for log, cols in raw["policy"].items():
        for c in cols:
            column = Column(c["name"], parse_type(c["type"]), bool(c["optional"]))
            out.setdefault(log, []).append(OptionalColumn(log, column, script=c["script"]))
    return {log: tuple(cols) for log, cols in out.items()}


def columns_of_script(script: str) -> dict[str, list[str]]:
    """log -> the columns policy ``script`` (``protocols/conn/vlan-logging``) adds."""
    return _names(lambda c: c.script == script)


def columns_of_option(option: str) -> dict[str, list[str]]:
    """log -> the columns option ``option`` (``SSL::log_include_...``) brings into the log."""
    return _names(lambda c: c.option == option)


def filter_options() -> frozenset[str]:
    """Every option that brings filtered columns into a log."""
    return frozenset(c.option for cols in optional_columns().values() for c in cols if c.option)


def _names(keep) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for log, cols in optional_columns().items():
        names = [c.column.name for c in cols if keep(c)]
        if names:
            out[log] = names
    return out


def with_optional_columns(base: LogSchema, names: Iterable[str]) -> LogSchema:
    """``base`` plus the optional columns ``names`` where Zeek writes them: filtered columns
    after their ``after`` column (record order), policy columns at the end in the given order
    (the scripts' load order). An unknown name is an error."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return base
    known = {c.column.name: c for c in optional_columns().get(base.name, ())}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"{base.name}.log has no optional column {', '.join(unknown)}")
    filtered = [c for c in known.values() if c.after is not None and c.column.name in wanted]
    columns: list[Column] = []
    for column in base.columns:
        columns.append(column)
        columns += [c.column for c in filtered if c.after == column.name]
    placed = {c.name for c in columns}
    missing = [c.column.name for c in filtered if c.column.name not in placed]
    if missing:
        raise ValueError(f"{base.name}.log: no column to place {', '.join(missing)} after")
    columns += [known[n].column for n in wanted if known[n].after is None]
    return LogSchema(base.name, tuple(columns))


# -- generation ---------------------------------------------------------------------------------


def generate(meta: dict) -> dict:
    """The bundled JSON from Zeek's ``log_schemas_meta.json`` (policy_extension_fields_...)."""
    policy: dict[str, list[dict]] = {}
    for log, fields in sorted(meta["policy_extension_fields_for_base_logs"].items()):
        for f in fields:
            script = f["added_by"].removeprefix("policy/").removesuffix(".zeek")
            policy.setdefault(log, []).append(
                {"name": f["name"], "type": f["type"], "optional": f["optional"], "script": script}
            )
    return {
        "zeek_version": meta.get("zeek_version"),
        "filtered": FILTERED_FIELDS,
        "policy": policy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta", type=Path, required=True, help="Zeek's log_schemas_meta.json")
    parser.add_argument("--out", type=Path, default=BUNDLED, help="JSON to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs")
    args = parser.parse_args(argv)
    text = json.dumps(generate(json.loads(args.meta.read_text())), indent=1) + "\n"
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs'}")
        return 0 if same else 1
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
