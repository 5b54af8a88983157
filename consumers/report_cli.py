"""``wirestream report CAPTURE``: the seed notebook's summary of one capture, from Kafka."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wirestream.cli import settings_of


@click.command("report")
@click.argument("capture")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write report.txt, report.html and http_bytes.png here.",
)
@click.option("--rows", default=15, show_default=True, help="Rows shown per table.")
@click.pass_context
def report(ctx: click.Context, capture: str, out: Path | None, rows: int) -> None:
    """Summarise one analysed capture (by md5, send id or file name): logs, files, seed analyses."""
    from wirestream.consumers import ConsumerError, details, frames
    from wirestream.consumers.report import build_report, pcap_details_view, write_report

    from wirestream.kafka import resolve_bootstrap

    settings = resolve_bootstrap(settings_of(ctx), start=False)
    try:
        info = details(capture, settings=settings)
        logs = frames(info, settings=settings, progress=False)
    except ConsumerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(pcap_details_view(info), indent=2))
    click.echo(build_report(logs).to_text(max_rows=rows))
    if out is not None:
        for kind, path in write_report(logs, out).items():
            click.echo(f"{kind}: {path}")
