"""``wirestream demo``: the seed notebook's flow end to end on the bundled capture.

Starts the local broker if no cluster is configured, sends ``wirestream/data/demo.pcap`` through
the real pipeline (producer -> Bro processor -> per-log Avro topics), reads the capture's details
and DataFrames back from Kafka and prints the seed's analyses. Nothing is simulated: every table
printed was decoded from Kafka.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from wirestream.cli import settings_of

DEMO_PCAP = Path(__file__).with_name("data") / "demo.pcap"


@click.command("demo")
@click.option(
    "--pcap",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEMO_PCAP,
    show_default=True,
    help="Capture to run instead of the bundled one.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Where the report (text, HTML, PNG plot) is written.",
)
@click.option(
    "--timeout", default=300.0, show_default=True, help="Seconds to wait for the analysis."
)
@click.pass_context
def demo(ctx: click.Context, pcap: Path, out: Path, timeout: float) -> None:
    """Run the bundled sample capture through Kafka and print what the seed notebook showed."""
    from wirestream.consumers import frames
    from wirestream.consumers.report import build_report, pcap_details_view, write_report
    from wirestream.kafka import resolve_bootstrap
    from wirestream.processors.engine.pcapio import CaptureError, check_capture_file
    from wirestream.processors.pipeline_cli import run_pipeline

    try:
        check_capture_file(pcap)  # before any broker is started or anything is sent
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = resolve_bootstrap(settings_of(ctx))
    click.echo(f"broker: {settings.bootstrap_servers}")
    outcome = run_pipeline(settings, [pcap], timeout=timeout, progress=False)
    info = outcome[next(iter(outcome))]
    view = pcap_details_view(info)
    click.echo("capture details (the seed's view_pcap_details):")
    click.echo(json.dumps(view, indent=2))
    if view["status"] != "ok":
        raise click.ClickException(
            f"analysis of {pcap} failed: {'; '.join(view['errors']) or view['status']}"
        )
    logs = frames(info, settings=settings, progress=False)
    click.echo(f"DataFrames from Kafka: { {name: len(df) for name, df in logs.items()} }")
    click.echo(build_report(logs).to_text())
    for kind, path in write_report(logs, out).items():
        click.echo(f"{kind}: {path}")
