"""``wirestream analyze``: packet captures in, a folder of Zeek logs out (``zeek -r`` without Zeek).

The built-in engine reads the traces (several are merged by timestamp, as Zeek merges its packet
sources), applies the capture filter, decodes, tracks connections and writes every log with the
project's Zeek log writer. ``--engine zeek`` (or ``auto`` when a ``zeek`` binary is found) runs
real Zeek instead and collects its logs through the same sink.
"""

from __future__ import annotations

import heapq
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import click
from wirestream.processors.engine.api import (
    OPTIONAL_COLUMNS_STATE,
    ExtractedFile,
    Packet,
    Record,
)
from wirestream.processors.engine.bpf import (
    DEFAULT_FILTER,
    BpfError,
    CaptureFilter,
    packet_filter_record,
)
from wirestream.processors.engine.gc_policy import analysis_gc
from wirestream.processors.engine.pcapio import (
    CaptureError,
    CaptureStats,
    check_capture_file,
    read_packets,
)
from wirestream.schemas.optional_columns import (
    columns_of_option,
    columns_of_script,
    filter_options,
    with_optional_columns,
)
from wirestream.schemas.zeek_types import LogSchema, zeek_log_schemas
from wirestream.schemas.zeeklog import ZeekLogWriter

from wirestream.cli import settings_of
from wirestream.config import ENGINES

log = logging.getLogger(__name__)

# The policy scripts whose columns the engine fills (--policy NAME, or @load of the script);
# their columns and where they go: wirestream.schemas.optional_columns.
POLICY_SCRIPTS: dict[str, str] = {
    "vlan-logging": "protocols/conn/vlan-logging",
    "mac-logging": "protocols/conn/mac-logging",
}


class AnalyzeError(click.ClickException):
    """The analysis cannot run (bad trace, bad filter, no engine): a clear one-line message."""


class LogFolderSink:
    """A :class:`~wirestream.processors.engine.api.Sink` writing ``<log>.log`` files in a folder,
    one :class:`ZeekLogWriter` per log opened at its first record, extracted files under
    ``extract_files/`` (Zeek's default ``FileExtract::prefix``)."""

    def __init__(
        self,
        out_dir: Path,
        fmt: Literal["tsv", "json"] = "tsv",
        *,
        optional_columns: dict[str, list[str]] | None = None,
        schemas: dict[str, LogSchema] | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.fmt = fmt
        self.schemas = schemas if schemas is not None else zeek_log_schemas()
        self.optional_columns = optional_columns or {}
        self.writers: dict[str, ZeekLogWriter] = {}
        self.files_written: list[Path] = []
        out_dir.mkdir(parents=True, exist_ok=True)

    def schema_for(self, name: str) -> LogSchema:
        base = self.schemas.get(name)
        if base is None:
            raise AnalyzeError(f"the engine produced a log Zeek does not define: {name!r}")
        try:  # policy and option columns where Zeek puts them
            return with_optional_columns(base, self.optional_columns.get(name, ()))
        except ValueError as exc:
            raise AnalyzeError(str(exc)) from exc

    def log(self, log_name: str, record: Record) -> None:
        writer = self.writers.get(log_name)
        if writer is None:
            writer = self.writers[log_name] = ZeekLogWriter(
                self.out_dir / f"{log_name}.log", self.schema_for(log_name), self.fmt
            )
        writer.write(record)

    def file(self, extracted: ExtractedFile) -> None:
        name = str(extracted.meta.get("extracted") or f"extract-{extracted.fuid}")
        if "/" in name or name.startswith("."):
            raise AnalyzeError(f"refusing to write extracted file with unsafe name {name!r}")
        folder = self.out_dir / "extract_files"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_bytes(extracted.data)
        self.files_written.append(path)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    @property
    def rows(self) -> dict[str, int]:
        return {name: w.rows_written for name, w in sorted(self.writers.items())}


@dataclass
class AnalyzeOptions:
    """What a ``zeek -r`` run would get from its command line and loaded scripts."""

    ignore_checksums: bool = False
    capture_filter: str | None = None
    bare: bool = False
    local_nets: tuple[str, ...] = ()
    hashes: tuple[str, ...] = ()
    extract: bool = False
    policies: tuple[str, ...] = ()
    seed: int | None = None
    x509_in_files_log: bool = False  # X509::log_x509_in_files_log: certificates in files.log
    delay_teredo_confirmation: bool = True  # Tunnel::delay_teredo_confirmation
    x509_relog_after: float | None = None  # X509::relog_known_certificates_after (None: 1 day)
    # SSL::log_include_server_certificate_subject_issuer / ..._client_...: ssl.log columns.
    ssl_log_subject_issuer: bool = False
    ssl_log_client_subject_issuer: bool = False
    # Protocol options scripts redef: protocol -> {<Protocol>Config field: value}.
    protocol_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tcp_inactivity_timeout: float | None = None  # None: Zeek's defaults
    udp_inactivity_timeout: float | None = None
    icmp_inactivity_timeout: float | None = None
    # What the loaded scripts enable (zeek_script.GATED_LOGS features and analyzer names);
    # None = Zeek's default scripts (everything). Bare mode (-b) sets it from the loads.
    features: frozenset[str] | None = None
    handled_events: frozenset[str] = frozenset()  # events the scripts have handlers for
    # Handlers whose bodies only raise notices: event -> notice.NoticeHandler, run by the engine.
    notice_handlers: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    zeek_scripts: tuple[str, ...] = ()  # scripts/redefs as given, for --engine zeek


@dataclass
class AnalyzeResult:
    engine: str
    packets: int = 0
    filtered_out: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # a capture that stopped part-way (logs hold what came before)
    # Built-in intake: datagrams, fragments, reassembled, non_ip, dropped (packets), linktypes.
    intake: dict[str, object] = field(default_factory=dict)

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.seconds if self.seconds else 0.0


def merged_packets(traces: Iterable[str | Path], stats: list[CaptureStats]) -> Iterator[Packet]:
    """Packets of all traces in timestamp order (Zeek serves the source with the earliest packet)."""
    streams = []
    for trace in traces:
        st = CaptureStats()
        stats.append(st)
        streams.append(read_packets(trace, st))
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda p: p.ts)


def optional_log_columns(options: AnalyzeOptions) -> dict[str, list[str]]:
    """log -> the optional columns ``options`` turn on: the policies' (in load order), and
    those of the log filter options the scripts set (SSL::log_include_..._subject_issuer)."""
    from wirestream.processors.engine.zeek_script import REDEFS

    out: dict[str, list[str]] = {}
    for policy in options.policies:
        if policy not in POLICY_SCRIPTS:
            raise AnalyzeError(f"unknown policy {policy!r}; known: {', '.join(POLICY_SCRIPTS)}")
        for log_name, names in columns_of_script(POLICY_SCRIPTS[policy]).items():
            out.setdefault(log_name, []).extend(names)
    for option in sorted(filter_options()):
        spec = REDEFS.get(option)
        if spec is not None and getattr(options, spec.option):
            for log_name, names in columns_of_option(option).items():
                out.setdefault(log_name, []).extend(names)
    return out


def build_engine(sink: Any, options: AnalyzeOptions) -> Any:
    """The built-in engine wired as ``zeek -r`` would be: protocol analyzers and file manager."""
    from wirestream.processors.engine import protocols  # noqa: F401  (registers analyzers)
    from wirestream.processors.engine.api import REGISTRY
    from wirestream.processors.engine.engine import Engine
    from wirestream.processors.engine.files import FileManager, FilesConfig
    from wirestream.processors.engine.sessions import LIKELY_SERVER_PORTS
    from wirestream.processors.engine.zeek_script import (
        enabled_analyzers,
        enabled_logs,
        loaded_server_ports,
    )

    settings: dict[str, Any] = {
        f"{proto}_inactivity_timeout": value
        for proto in ("tcp", "udp", "icmp")
        if (value := getattr(options, f"{proto}_inactivity_timeout")) is not None
    }
    features = options.features
    analyzers = None if features is None else enabled_analyzers(features, REGISTRY)
    if analyzers is not None:  # bare mode: only the loaded scripts' ports are server ports
        specs = [REGISTRY[name] for name in analyzers]
        settings["likely_server_ports"] = loaded_server_ports(specs, LIKELY_SERVER_PORTS)
    engine = Engine(
        sink,
        ignore_checksums=options.ignore_checksums,
        local_nets=options.local_nets or None,
        seed=options.seed,
        conn_vlan_columns="vlan-logging" in options.policies,
        conn_l2_columns="mac-logging" in options.policies,
        delay_teredo_confirmation=options.delay_teredo_confirmation,
        weird_log=features is None or "weird" in enabled_logs(features),
        analyzers=analyzers,
        handled_events=options.handled_events,
        **settings,
    )
    config = FilesConfig(hashes=options.hashes, extract=options.extract)
    engine.files = FileManager(
        sink.log,
        sink.file if options.extract else None,
        config=config,
        uids=engine.uids,
        local_nets=engine.local_nets,
    )
    from wirestream.processors.engine.protocols import x509

    x509_config = x509.X509Config(log_in_files_log=options.x509_in_files_log)
    if options.x509_relog_after is not None:
        x509_config = replace(x509_config, relog_after=options.x509_relog_after)
    x509.configure(engine.files, x509_config)
    from wirestream.processors.engine.zeek_script import protocol_config_type

    for protocol, values in options.protocol_configs.items():
        config = protocol_config_type(protocol)(**values)  # its __post_init__ checks values
        sys.modules[type(config).__module__].configure(engine, config)
    from wirestream.processors.engine import notice
    from wirestream.processors.engine.zeek_script import option_value

    engine.analyzer_state[OPTIONAL_COLUMNS_STATE] = optional_log_columns(options)
    configs = options.protocol_configs
    notice.configure(engine, options.notice_handlers, lambda name: option_value(name, configs))
    return engine


class LoadedLogsSink:
    """Passes on only the logs whose scripts are loaded (bare mode): Zeek still analyses, but
    without base/protocols/conn there is no conn.log, without base/files/x509 no x509.log..."""

    def __init__(self, sink: Any, dropped: frozenset[str]) -> None:
        self._sink = sink
        self.dropped = dropped
        self.file = sink.file

    def log(self, log_name: str, record: Record) -> None:
        if log_name not in self.dropped:
            self._sink.log(log_name, record)


@analysis_gc()
def run_builtin(traces: list[str], sink: Any, options: AnalyzeOptions) -> AnalyzeResult:
    """Analyze ``traces`` with the built-in engine into ``sink``; the caller closes the sink."""
    capture_filter = None
    if options.capture_filter:
        try:
            capture_filter = CaptureFilter(options.capture_filter)
        except BpfError as exc:
            raise AnalyzeError(str(exc)) from exc
    if options.features is not None:
        from wirestream.processors.engine.zeek_script import GATED_LOGS, enabled_logs

        dropped = frozenset(GATED_LOGS) - enabled_logs(options.features)
        if dropped:
            sink = LoadedLogsSink(sink, dropped)
    engine = build_engine(sink, options)
    if not options.bare:
        # Zeek's PacketFilter framework logs the filter it installs at startup (wall clock).
        sink.log(
            "packet_filter",
            packet_filter_record(time.time(), options.capture_filter or DEFAULT_FILTER),
        )
    result = AnalyzeResult(engine="builtin")
    stats: list[CaptureStats] = []
    started = time.perf_counter()
    process = engine.process
    try:
        if capture_filter is None:
            for packet in merged_packets(traces, stats):
                process(packet)
        else:
            matches = capture_filter.matches
            for packet in merged_packets(traces, stats):
                if matches(packet):
                    process(packet)
    except CaptureError as exc:
        # Zeek also keeps what it analyzed before a broken capture; the logs are still written.
        result.error = str(exc)
        log.error("%s", exc)
    finally:
        engine.finish()
    result.seconds = time.perf_counter() - started
    result.packets = sum(s.packets for s in stats)
    result.bytes_read = sum(s.bytes_read for s in stats)
    result.filtered_out = capture_filter.dropped if capture_filter else 0
    intake = engine.decoder.stats
    linktypes: dict[int, int] = {}
    for st in stats:
        for linktype, n in st.linktypes.items():
            linktypes[linktype] = linktypes.get(linktype, 0) + n
    result.intake = {
        "datagrams": intake.datagrams,
        "fragments": intake.fragments,
        "reassembled": intake.reassembled,
        "non_ip": sum(intake.non_ip.values()),
        "dropped": dict(intake.dropped),
        "linktypes": linktypes,
    }
    return result


def analyze_traces(
    traces: list[str],
    out_dir: Path,
    options: AnalyzeOptions,
    *,
    fmt: Literal["tsv", "json"] = "tsv",
    engine: str = "auto",
    zeek_path: str = "",
) -> AnalyzeResult:
    """Run one analysis into ``out_dir`` (created if needed); the API behind the command."""
    for trace in traces:
        if trace == "-":
            continue
        if not Path(trace).is_file():
            raise AnalyzeError(f"{trace}: no such capture file")
        try:
            check_capture_file(trace)  # refuse a non-capture before any output is made
        except CaptureError as exc:
            raise AnalyzeError(str(exc)) from exc
    if engine not in ENGINES:
        raise AnalyzeError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    zeek = None
    if engine in ("auto", "zeek"):  # the Zeek runner is not even imported for --engine builtin
        from wirestream.processors.zeek_engine import find_zeek

        zeek = find_zeek(zeek_path)
    if engine == "zeek" and zeek is None:
        raise AnalyzeError(
            "--engine zeek: no zeek binary found (set WIRESTREAM_ZEEK_PATH or put zeek on PATH)"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise AnalyzeError(f"{out_dir} exists and is not a folder")
    sink = LogFolderSink(out_dir, fmt, optional_columns=optional_log_columns(options))
    try:
        if zeek is not None:
            from wirestream.processors.zeek_engine import ZeekError, run_zeek

            try:
                result = run_zeek(zeek, traces, sink, options, json_logs=fmt == "json")
            except ZeekError as exc:
                raise AnalyzeError(str(exc)) from exc
        else:
            result = run_builtin(traces, sink, options)
    finally:
        sink.close()
    result.rows = sink.rows
    return result


# Flags that set an option a Zeek script can also set: option name -> AnalyzeOptions field.
# An explicitly given flag wins over the scripts; --policy adds to the scripts' policies.
FLAG_FIELDS = {
    "ignore_checksums": "ignore_checksums",
    "local_nets": "local_nets",
    "hashes": "hashes",
    "extract": "extract",
    "delay_teredo_confirmation": "delay_teredo_confirmation",
    "x509_in_files_log": "x509_in_files_log",
}


def zeek_settings(
    args: tuple[str, ...], reads: tuple[str, ...], codes: tuple[str, ...] = ()
) -> tuple[list[str], Any]:
    """Split positional arguments the way Zeek reads them and apply the scripts, redefs and
    ``-e`` code (after the scripts, as Zeek): (traces, ZeekSettings). Ignored script parts are
    logged as warnings, one each."""
    from wirestream.processors.engine.zeek_script import (
        ZeekScriptError,
        classify_args,
        settings_from_args,
    )

    parsed = classify_args(args, lambda a: Path(a).is_file())

    def read_text(path: str) -> str:
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise AnalyzeError(f"{path}: cannot read the Zeek script: {exc}") from exc

    order = [*parsed.order, *(("code", code) for code in codes)]
    try:
        settings = settings_from_args(order, read_text)
    except ZeekScriptError as exc:
        raise AnalyzeError(f"Zeek script: {exc}") from exc
    for item in settings.ignored:
        log.warning("ignored (the built-in engine does not implement it): %s", item)
    scripts = [str(Path(a).resolve()) if kind == "file" else a for kind, a in parsed.order]
    scripts += [arg for code in codes for arg in ("-e", code)]
    settings.overrides.setdefault("zeek_scripts", tuple(scripts))
    return [*parsed.traces, *reads], settings


@click.command(
    "analyze",
    context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": False},
    epilog="Zeek's command line works as is (zeek -> wirestream analyze --out DIR): TRACE "
    "arguments that are *.zeek scripts, Zeek script names (base/protocols/dns, "
    "protocols/conn/vlan-logging) or NAME=VALUE redefs are read as Zeek reads them. From "
    "scripts the engine honours @load of the scripts it implements and redefs of the options "
    "it has (e.g. Site::local_nets, Tunnel::delay_teredo_confirmation; REDEFS in "
    "processors/engine/zeek_script.py lists them) and notes which events have handlers; "
    "anything else is logged as ignored. Explicit flags win "
    "over script settings (--policy adds to the scripts' policies).",
)
@click.argument("traces", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-r",
    "reads",
    multiple=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="A trace to read (Zeek's -r; repeatable, same as a TRACE argument).",
)
@click.option(
    "-e",
    "codes",
    multiple=True,
    metavar="ZEEK_CODE",
    help="Zeek script text to read after the scripts (Zeek's -e), e.g. "
    "'redef Site::local_nets += { 10.0.0.0/8 };'.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the logs (<log>.log), created if missing.",
)
@click.option("-C", "ignore_checksums", is_flag=True, help="Ignore checksums (Zeek's -C).")
@click.option("-f", "capture_filter", default=None, help="BPF capture filter (Zeek's -f).")
@click.option("--json", "json_logs", is_flag=True, help="Write JSON lines instead of Zeek TSV.")
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="auto (default: zeek if installed, else builtin), builtin, or zeek (runs a real Zeek "
    "binary; that path is untested against real Zeek, which was not installable here).",
)
@click.option(
    "--local-nets",
    default="",
    help="Comma-separated CIDRs for Site::local_nets (local_orig/local_resp).",
)
@click.option(
    "--hash",
    "hashes",
    default="",
    help="Comma-separated file hashes to compute (MD5,SHA1,SHA256), as hash-all-files.",
)
@click.option("--extract", is_flag=True, help="Extract transferred files into OUT/extract_files.")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    help="Optional Zeek policy whose columns to add: vlan-logging, mac-logging (repeatable).",
)
@click.option(
    "--delay-teredo-confirmation/--no-delay-teredo-confirmation",
    default=True,
    show_default=True,
    help="Zeek's Tunnel::delay_teredo_confirmation: confirm a Teredo tunnel only once both "
    "sides were seen.",
)
@click.option(
    "--x509-in-files-log",
    "x509_in_files_log",
    is_flag=True,
    help="Also log TLS certificates in files.log (Zeek's X509::log_x509_in_files_log; off "
    "by default as in Zeek).",
)
@click.option(
    "-b",
    "bare",
    is_flag=True,
    help="Zeek's bare mode: only what the given scripts load. Analyzers attach only for "
    "loaded base/protocols/<x>; conn.log needs base/protocols/conn, weird.log "
    "base/frameworks/notice/weird, tunnel.log base/frameworks/tunnels, x509.log base/files/x509 "
    "(or a protocol script loading them, as in Zeek); likely server ports are the tunnels' "
    "and the loaded analyzers'; no packet_filter.log.",
)
@click.option("--seed", type=int, default=None, hidden=True, help="Deterministic uids (tests).")
@click.pass_context
def analyze_command(
    ctx: click.Context,
    traces: tuple[str, ...],
    reads: tuple[str, ...],
    codes: tuple[str, ...],
    out_dir: Path,
    ignore_checksums: bool,
    capture_filter: str | None,
    json_logs: bool,
    engine: str | None,
    local_nets: str,
    hashes: str,
    extract: bool,
    policies: tuple[str, ...],
    bare: bool,
    seed: int | None,
    x509_in_files_log: bool,
    delay_teredo_confirmation: bool,
) -> None:
    """Analyze packet captures (pcap/pcapng, '-' for stdin) into Zeek logs in --out."""
    settings = settings_of(ctx)
    trace_list, zeek = zeek_settings(traces, reads, codes)
    if not trace_list:
        raise click.UsageError("no trace given (a TRACE argument or -r TRACE)")
    flags = {
        "ignore_checksums": ignore_checksums,
        "local_nets": tuple(n.strip() for n in local_nets.split(",") if n.strip()),
        "hashes": tuple(h.strip().upper() for h in hashes.split(",") if h.strip()),
        "extract": extract,
        "delay_teredo_confirmation": delay_teredo_confirmation,
        "x509_in_files_log": x509_in_files_log,
    }
    given = {
        FLAG_FIELDS[name]: value
        for name, value in flags.items()
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    script_policies = tuple(zeek.overrides.pop("policies", ()))
    options = AnalyzeOptions(
        **{**zeek.overrides, **given},
        capture_filter=capture_filter,
        bare=bare,
        policies=script_policies + tuple(p for p in policies if p not in script_policies),
        seed=seed,
        features=frozenset(zeek.features) if bare else None,
        handled_events=frozenset(zeek.handled_events),
        notice_handlers=dict(zeek.notice_handlers),
    )
    chosen = engine or settings.engine
    zeek_path = settings.zeek_path  # also WIRESTREAM_ZEEK_PATH, as every setting
    try:
        result = analyze_traces(
            trace_list,
            out_dir,
            options,
            fmt="json" if json_logs else "tsv",
            engine=chosen,
            zeek_path=zeek_path,
        )
    except ValueError as exc:  # FilesConfig and friends reject bad option values
        raise AnalyzeError(str(exc)) from exc
    rows = ", ".join(f"{name} {n}" for name, n in result.rows.items()) or "no logs"
    click.echo(
        f"{result.engine}: {result.packets} packets in {result.seconds:.3f}s "
        f"({result.packets_per_second:,.0f} pkt/s); {rows}",
        err=True,
    )
    if result.intake:
        i = result.intake
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(i["dropped"].items())) or "none"
        click.echo(
            f"intake: link types {i['linktypes']}; {i['datagrams']} IP datagrams, "
            f"{i['fragments']} fragments ({i['reassembled']} reassembled), {i['non_ip']} non-IP, "
            f"{result.filtered_out} filtered out; dropped: {dropped}",
            err=True,
        )
    if result.error:
        raise AnalyzeError(f"capture stopped early: {result.error} (logs hold what came before)")


# The verb's click object, registered in wirestream/cli.py.
analyze = analyze_command
