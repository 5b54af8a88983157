"""Regenerate the committed ``schemas/avsc/*.avsc`` from Zeek's field lists.

    python -m wirestream.schemas.generate [--from log_schemas.json] [--out DIR] [--check]

The output is a pure function of the field list (same input, same bytes), so a test can
regenerate into a temporary folder and compare with the committed files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wirestream.schemas.avro import avro_schema, avsc_text
from wirestream.schemas.zeek_types import BUNDLED_SCHEMAS, zeek_log_schemas

AVSC_DIR = Path(__file__).with_name("avsc")
log = logging.getLogger(__name__)


def avsc_files(source: Path = BUNDLED_SCHEMAS) -> dict[str, str]:
    """File name -> ``.avsc`` text for every log in a ``log_schemas.json``-style file."""
    return {
        f"{name}.avsc": avsc_text(avro_schema(schema))
        for name, schema in sorted(zeek_log_schemas(source).items())
    }


def write_avsc(out: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    """Write the files into ``out`` and delete ``.avsc`` files there that are no longer generated.

    Returns (written or changed names, removed names).
    """
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = out / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    removed = []
    for path in sorted(out.glob("*.avsc")):
        if path.name not in files:
            path.unlink()
            removed.append(path.name)
    return changed, removed


def stale_avsc(out: Path, files: dict[str, str]) -> list[str]:
    """Names whose committed text differs from what would be generated (missing/extra too)."""
    present = {p.name for p in out.glob("*.avsc")}
    differ = [n for n, t in files.items() if n not in present or (out / n).read_text() != t]
    return sorted(differ + sorted(present - set(files)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wirestream.schemas.generate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=BUNDLED_SCHEMAS,
        help="Zeek field list, log_schemas.json format (default: the bundled one)",
    )
    parser.add_argument("--out", type=Path, default=AVSC_DIR, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the folder is stale"
    )
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    files = avsc_files(args.source)
    if args.check:
        stale = stale_avsc(args.out, files)
        for name in stale:
            print(f"stale: {name}")
        return 1 if stale else 0
    changed, removed = write_avsc(args.out, files)
    print(
        f"{len(files)} schemas in {args.out}: {len(changed)} written, {len(removed)} removed",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
