"""The pipeline's verbs: ``send``, ``process``, ``run``, ``status``, ``files`` and ``stats``.

Thin click wrappers; the work is in ``producers.pcap_producer``, ``processors.bro_processor``,
``processors.file_analysis`` and ``processors.stats``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import click

from wirestream import topics
from wirestream.config import ENGINES, Settings

log = logging.getLogger(__name__)


def _settings(ctx: click.Context, *, start_broker: bool = False) -> Settings:
    from wirestream.broker import BrokerError
    from wirestream.cli import settings_of
    from wirestream.kafka import resolve_bootstrap

    try:
        return resolve_bootstrap(settings_of(ctx), start=start_broker)
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc


def ensure_pipeline_topics(settings: Settings) -> None:
    """The system topics the pipeline needs (log topics are created as logs appear)."""
    from wirestream.admin import TopicError, ensure_topics

    try:
        ensure_topics(settings, topics.system_topic_specs(settings))
    except TopicError as exc:
        raise click.ClickException(str(exc)) from exc


# --- send ---------------------------------------------------------------------------------------


@click.command("send")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="Send captures again even if already sent.")
@click.option(
    "--sensor", default=None, help="Sensor name recorded with the capture (default: settings)."
)
@click.option(
    "--watch",
    "watch",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep sending every new capture that appears in this folder.",
)
@click.option(
    "--interval", default=2.0, show_default=True, help="Seconds between folder scans (--watch)."
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar per file.")
@click.option(
    "--interface",
    default=None,
    help="Capture live on this interface (Linux, root/CAP_NET_RAW) and send rotated chunks.",
)
@click.option(
    "--rotate",
    default=60.0,
    show_default=True,
    help="Seconds per live-capture chunk (--interface).",
)
@click.option(
    "--keep-chunks", is_flag=True, help="Keep live-capture chunk files after they were sent."
)
@click.option(
    "--zeek-logs",
    is_flag=True,
    help="The paths are Zeek log files (TSV/JSON) to publish record by record; with --watch, follow every *.log there.",
)
@click.pass_context
def send_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    force: bool,
    sensor: str | None,
    watch: Path | None,
    interval: float,
    progress: bool,
    interface: str | None,
    rotate: float,
    keep_chunks: bool,
    zeek_logs: bool,
) -> None:
    """Publish pcap/pcapng files (folders are searched) on the pcap topic for the processors."""
    from wirestream.producers.pcap_producer import send_captures, watch_folder

    if not paths and watch is None and interface is None:
        raise click.UsageError("name capture files or folders, --watch a folder or --interface")
    settings = _settings(ctx)
    ensure_pipeline_topics(settings)
    if zeek_logs:
        _send_zeek_logs(settings, paths, sensor, watch)
        return
    if interface is not None:
        from wirestream.producers.live_capture import LiveCaptureError, send_live

        stop = threading.Event()
        _on_signals(stop.set)
        try:
            send_live(
                settings,
                interface,
                stop=stop.is_set,
                sensor=sensor,
                rotate_seconds=rotate,
                keep_chunks=keep_chunks,
            )
        except LiveCaptureError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    failed = 0
    if paths:
        for r in send_captures(settings, paths, sensor=sensor, force=force, progress=progress):
            failed += r.status == "failed"
            extra = f": {r.error}" if r.error else ""
            click.echo(f"{r.status:9} {r.md5 or '-':32} {r.packets:>9} pkts  {r.path}{extra}")
    if watch is not None:
        stop = threading.Event()
        _on_signals(stop.set)
        watch_folder(settings, watch, sensor=sensor, interval=interval, stop=stop.is_set)
    if failed:
        sys.exit(1)


def _send_zeek_logs(
    settings: Settings, paths: tuple[Path, ...], sensor: str | None, watch: Path | None
) -> None:
    from wirestream.producers.zeek_tailer import ZeekLogTailer
    from wirestream.schemas.zeeklog.errors import ZeekLogError
    from wirestream.schemas.zeeklog.reader import zeek_log_header

    files = [q for p in paths for q in (sorted(p.glob("*.log")) if p.is_dir() else [p])]
    for path in files:  # all checked before anything is published
        try:
            zeek_log_header(path)
        except ZeekLogError as exc:
            raise click.ClickException(str(exc)) from exc
    tailer = ZeekLogTailer(settings, sensor)
    for path in files:
        r = tailer.tail(path)
        click.echo(
            f"{r.records:>9} records {r.dead_letters:>5} dead letters  {path}"
            + (f": {r.error}" if r.error else "")
        )
    if watch is not None:
        stop = threading.Event()
        _on_signals(stop.set)
        tailer.tail_folder(watch, stop=stop.is_set)


# --- process ------------------------------------------------------------------------------------


@click.command("process")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="Analysis engine (default: settings.engine).",
)
@click.option(
    "--group", default=None, help="Consumer group (default: <topic prefix>wirestream-processor)."
)
@click.option(
    "--instance",
    default=None,
    help="Stable instance name; a restarted instance with the same name fences its predecessor at once.",
)
@click.option(
    "--spool-memory",
    default=64,
    show_default=True,
    help="MiB of output held in memory per open stream before spilling to disk.",
)
@click.pass_context
def process_command(
    ctx: click.Context,
    engine: str | None,
    group: str | None,
    instance: str | None,
    spool_memory: int,
) -> None:
    """Run a Bro processor: pcap topic in, Zeek logs out, exactly once, until SIGTERM."""
    from wirestream.processors.bro_processor import (
        BroProcessor,
        EngineUnavailable,
        serve,
    )

    settings = _settings(ctx)
    ensure_pipeline_topics(settings)
    try:
        processor = BroProcessor(
            settings,
            engine=engine,
            group_id=group,
            instance=instance,
            spool_memory=spool_memory * 1024 * 1024,
        )
    except EngineUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"processor {processor.instance} ({processor.engine_name} engine) in group {processor.group_id}",
        err=True,
    )
    serve(processor)


# --- run ----------------------------------------------------------------------------------------


def processor_group_active(settings: Settings, group: str) -> bool:
    """True if some processor is a live member of the group."""
    from wirestream.kafka import make_admin

    admin = make_admin(settings)
    try:
        desc = admin.describe_consumer_groups([group])[group].result(15)
    except Exception:  # noqa: BLE001 - an unknown group is simply not active
        return False
    return bool(desc.members)


def run_pipeline(
    settings: Settings,
    paths: list[Path],
    *,
    engine: str | None = None,
    sensor: str | None = None,
    force: bool = False,
    timeout: float = 600.0,
    progress: bool = False,
) -> dict[str, Any]:
    """Sends captures, analyses them (starting an in-process processor if none is running), and
    returns ``{path: CaptureDetails | SendResult}`` once every capture's details are final."""
    from wirestream.processors.bro_processor import BroProcessor, processor_group
    from wirestream.processors.capture_store import read_captures, wait_for_details
    from wirestream.producers.pcap_producer import send_captures

    ensure_pipeline_topics(settings)
    processor = None
    thread = None
    if not processor_group_active(settings, processor_group(settings)):
        processor = BroProcessor(settings, engine=engine)
        thread = threading.Thread(target=processor.run, name="bro-processor", daemon=True)
        thread.start()
        log.info("started an in-process processor (%s engine)", processor.engine_name)
    try:
        results = send_captures(settings, paths, sensor=sensor, force=force, progress=progress)
        known = read_captures(settings)
        waiting = {}
        for r in results:
            if r.status == "sent" or (r.status == "duplicate" and not known[r.md5].done):
                waiting[r.md5] = r.send_id
        done = wait_for_details(settings, waiting, timeout=timeout) if waiting else {}
        known = read_captures(settings)
        return {r.path: done.get(r.md5) or known.get(r.md5) or r for r in results}
    finally:
        if processor is not None and thread is not None:
            processor.stop()
            thread.join(60)


@click.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="Analysis engine for an in-process processor.",
)
@click.option("--sensor", default=None, help="Sensor name recorded with the captures.")
@click.option("--force", is_flag=True, help="Analyse captures again even if sent before.")
@click.option(
    "--timeout", default=600.0, show_default=True, help="Seconds to wait for the analysis."
)
@click.option("--json", "as_json", is_flag=True, help="Print the capture details as JSON.")
@click.pass_context
def run_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    engine: str | None,
    sensor: str | None,
    force: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Start what is missing (local broker, topics, a processor), send captures, print their details."""
    from dataclasses import asdict

    settings = _settings(ctx, start_broker=True)
    outcome = run_pipeline(
        settings, list(paths), engine=engine, sensor=sensor, force=force, timeout=timeout
    )
    details = {p: asdict(d) for p, d in outcome.items()}
    if as_json:
        click.echo(json.dumps(details, indent=2, sort_keys=True))
    else:
        for path, d in details.items():
            _print_details(path, d)
    if any(d.get("status") == "failed" for d in details.values()):
        sys.exit(1)


def _print_details(path: str, d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cap = d.get("capture") or d.get("info") or {}
    console.print(
        f"[bold]{path}[/bold]  md5 {d.get('md5')}  status [bold]{d.get('status')}[/bold]  "
        f"{cap.get('packets', 0)} packets"
    )
    for err in d.get("errors") or ([d["error"]] if d.get("error") else []):
        console.print(f"  [red]error:[/red] {err}")
    if d.get("logs"):
        table = Table("log", "records", "topic", "offsets (partition: first-last)")
        for name, entry in d["logs"].items():
            spans = ", ".join(f"{p}: {a}-{b}" for p, (a, b) in entry["offsets"].items())
            table.add_row(name, str(entry["records"]), entry["topic"], spans)
        console.print(table)
    if d.get("files"):
        table = Table("fuid", "mime", "size", "entropy", "sha256")
        for f in d["files"]:
            table.add_row(
                f["fuid"], f["mime_type"], str(f["file_size"]), f"{f['entropy']:.3f}", f["sha256"]
            )
        console.print(table)


# --- status -------------------------------------------------------------------------------------


def processor_lag(settings: Settings, group: str) -> dict[int, dict[str, int]]:
    """Per pcap-topic partition: the group's committed offset, the end offset, and the lag."""
    from confluent_kafka import TopicPartition

    from wirestream.kafka import make_consumer, watermark_offsets

    topic = topics.system_topic(topics.PCAP_TOPIC, settings)
    consumer = make_consumer(settings, group)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = consumer.committed(parts, timeout=15)
        out = {}
        for tp in committed:
            _low, high = watermark_offsets(
                consumer, TopicPartition(topic, tp.partition), timeout=10
            )
            done = tp.offset if tp.offset >= 0 else 0
            out[tp.partition] = {"committed": done, "end": high, "lag": max(0, high - done)}
        return out
    finally:
        consumer.close()


@click.command("status")
@click.option(
    "--group",
    default=None,
    help="Processor consumer group (default: <topic prefix>wirestream-processor).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_command(ctx: click.Context, group: str | None, as_json: bool) -> None:
    """Processor consumer-group lag on the pcap topic, and the captures seen so far."""
    from wirestream.processors.bro_processor import processor_group
    from wirestream.processors.capture_store import read_captures

    settings = _settings(ctx)
    group = group or processor_group(settings)
    lag = processor_lag(settings, group)
    captures = read_captures(settings)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "group": group,
                    "members_active": processor_group_active(settings, group),
                    "lag": lag,
                    "captures": {
                        m: {"name": d.name, "status": d.status, "send_id": d.send_id}
                        for m, d in captures.items()
                    },
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"group {group}: {'active' if processor_group_active(settings, group) else 'no live members'}"
    )
    for p, row in lag.items():
        click.echo(
            f"  pcap partition {p}: committed {row['committed']}, end {row['end']}, lag {row['lag']} offsets (transaction markers count)"
        )
    click.echo(f"{len(captures)} captures:")
    for md5, d in sorted(captures.items(), key=lambda kv: kv[1].sent_at or 0):
        records = sum(e["records"] for e in d.logs.values())
        click.echo(
            f"  {d.status:7} {md5} {d.name} ({d.capture.get('packets', 0)} packets, {records} records)"
        )


# --- faust workers ------------------------------------------------------------------------------


def run_faust(app: Any, loglevel: str = "info") -> None:
    """Runs a faust app's worker in this process until SIGTERM/SIGINT."""
    from faust import Worker

    Worker(app, loglevel=loglevel).execute_from_commandline()


@click.command("files")
@click.argument("mode", required=False, type=click.Choice(["worker"]), default="worker")
@click.option("--web-port", default=None, type=int, help="Serve faust's web views on this port.")
@click.pass_context
def files_command(ctx: click.Context, mode: str, web_port: int | None) -> None:
    """Run the file-analysis agent (a faust worker): extracted-file chunks in, file metadata
    (by fuid) out. MODE is faust's ``worker`` (the only one; optional)."""
    from wirestream.processors.file_analysis import make_app

    settings = _settings(ctx)
    ensure_pipeline_topics(settings)
    datadir = settings.home / f"{settings.topic_prefix}faust-files"
    datadir.mkdir(parents=True, exist_ok=True)
    conf: dict[str, Any] = {"datadir": str(datadir)}
    if web_port:
        conf.update(web_enabled=True, web_port=web_port)
    run_faust(make_app(settings, **conf))


@click.command("stats")
@click.argument("mode", required=False, type=click.Choice(["worker"]), default="worker")
@click.option(
    "--web-port", default=6066, show_default=True, help="Port of faust's web views (the tables)."
)
@click.pass_context
def stats_command(ctx: click.Context, mode: str, web_port: int) -> None:
    """Run the stats agents (a faust worker): per-minute bytes per host/service, DNS queries, new
    hosts, served as JSON at /stats/ and /stats/new-hosts/. MODE is faust's ``worker`` (optional)."""
    from wirestream.processors.stats import make_app

    from wirestream.admin import ensure_topics

    settings = _settings(ctx)
    ensure_topics(settings, [topics.log_topic_spec(g, settings) for g in ("conn", "dns")])
    datadir = settings.home / f"{settings.topic_prefix}faust-stats"
    datadir.mkdir(parents=True, exist_ok=True)
    run_faust(make_app(settings, web_port=web_port, datadir=str(datadir)))


def _on_signals(callback: Any) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: callback())
