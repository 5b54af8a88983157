"""``wirestream logs``: look at the log topics from a shell (the notebook API, printed)."""

from __future__ import annotations

from pathlib import Path

import click

from wirestream.cli import settings_of


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from None


def _emit(frame, out: Path | None) -> None:
    """Print a frame, or write it (.parquet, .csv or .json by the file name)."""
    if out is None:
        import pandas as pd

        with pd.option_context("display.max_columns", None, "display.width", 200):
            click.echo(frame.to_string(max_rows=200))
        return
    writers = {".parquet": frame.to_parquet, ".csv": frame.to_csv, ".json": frame.to_json}
    write = writers.get(out.suffix)
    if write is None:
        raise click.UsageError(f"--out must end in {', '.join(writers)}, not {out.name!r}")
    write(out)
    click.echo(f"{len(frame):,} records -> {out}")


@click.group("logs")
def logs() -> None:
    """Read Zeek log topics: overview, newest records, time windows."""


@logs.command("topics")
@click.pass_context
def topics_cmd(ctx: click.Context) -> None:
    """Every log topic with its partitions, records and time span.

    Consumer-group lag is shown too.
    """
    from wirestream.consumers import ConsumerError, TopicsView

    try:
        click.echo(repr(TopicsView(settings_of(ctx))))
    except ConsumerError as exc:
        _fail(exc)


@logs.command("tail")
@click.argument("log")
@click.option("-n", "count", default=10, show_default=True, help="How many records.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
def tail_cmd(ctx: click.Context, log: str, count: int, out: Path | None) -> None:
    """The newest records of LOG.

    LOG is a log name such as conn or dns; -n says how many records.
    """
    from wirestream.consumers import ConsumerError, tail

    try:
        _emit(tail(log, count, settings=settings_of(ctx)), out)
    except ConsumerError as exc:
        _fail(exc)


@logs.command("read")
@click.argument("log")
@click.option("--start", help="From (ISO time, epoch seconds, 'now', '-15min'); default: first.")
@click.option("--end", help="Until (exclusive; same forms); default: the current end.")
@click.option("--lateness", default="5min", show_default=True, help="Read this far past --end.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
def read_cmd(
    ctx: click.Context,
    log: str,
    start: str | None,
    end: str | None,
    lateness: str,
    out: Path | None,
) -> None:
    """Records of LOG with START <= ts < END, sorted by ts."""
    from wirestream.consumers import ConsumerError, read

    try:
        frame = read(log, start, end, settings=settings_of(ctx), lateness=lateness)
    except ConsumerError as exc:
        _fail(exc)
    _emit(frame, out)
