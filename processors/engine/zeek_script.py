"""Zeek's command line and the subset of Zeek script the built-in engine can honour.

A Zeek user's command (``zeek -b -C -r trace.pcap local.zeek "Site::local_nets+={10.0.0.0/8}"``)
names scripts, script names to load and command-line redefs. This module turns them into the
engine's option overrides (keys are ``AnalyzeOptions`` field names), the scripts' loaded names
(for bare mode) and the events the scripts handle (some analyzers only do work, and only raise
weirds, when an event has a handler, as Zeek's core does).

Understood: ``@load`` of the scripts listed in :data:`LOAD_EFFECTS` (and any
``base/protocols/<x>``), ``redef NAME = VALUE;`` / ``+=`` / ``-=`` for the options in
:data:`REDEFS` (unqualified names take the current ``module``), and ``event NAME(...)``
handlers (their names only). Everything else is reported in ``ignored`` for the caller to log;
broken syntax (unbalanced braces, an unterminated string or statement) raises
:class:`ZeekScriptError`.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# Analyzers a base/protocols/<x> package brings besides the one named <x> (ftp schedules
# ftp_data, ssl registers dtls). Which analyzers exist is the engine's registry's business.
EXTRA_ANALYZERS: dict[str, frozenset[str]] = {
    "ftp": frozenset({"ftp_data"}),
    "ssl": frozenset({"dtls"}),
}
# What loading base/protocols/<x> pulls in through its own @load lines (read from Zeek 9's
# scripts): the logs written by scripts that bare mode (-b) does not load by itself.
#   conn   = base/protocols/conn (conn.log)
#   weird  = base/frameworks/notice/weird (weird.log)
#   tunnel = base/frameworks/tunnels (tunnel.log)
#   x509   = base/files/x509 (x509.log, ocsp.log)
PROTOCOL_PULLS: dict[str, frozenset[str]] = {
    "ftp": frozenset({"conn", "weird", "x509", "ssl", "dtls"}),  # ftp/gridftp loads conn, ssl
    "http": frozenset({"weird", "tunnel"}),
    "ssl": frozenset({"weird", "x509"}),
    "smtp": frozenset({"weird"}),
    "quic": frozenset({"weird"}),
    "smb": frozenset({"weird"}),
    "socks": frozenset({"tunnel"}),
    "websocket": frozenset({"http", "weird", "tunnel"}),  # websocket loads base/protocols/http
}
# Logs written only when the script that creates them is loaded (always, without -b).
GATED_LOGS: dict[str, str] = {
    "conn": "conn",
    "weird": "weird",
    "tunnel": "tunnel",
    "x509": "x509",
    "ocsp": "x509",
    "ntlm": "ntlm",  # base/protocols/ntlm; SMB's GSSAPI blobs feed it, but smb does not load it
}
EVERYTHING = "*"  # base/init-default: every log and analyzer (Zeek's default run)
# Server ports base/packet-protocols registers (loaded even in bare mode; they join Zeek's
# likely_server_ports): AYIYA, Geneve, GRE-in-UDP, GTPv1, Teredo, VXLAN.
PACKET_PROTOCOL_SERVER_PORTS: dict[str, frozenset[int]] = {
    "udp": frozenset({5072, 6081, 4754, 2152, 2123, 3544, 4789}),
}


@dataclass(frozen=True)
class LoadEffect:
    """What loading one script does for the engine: features it turns on, options it sets."""

    features: frozenset[str] = frozenset()
    overrides: tuple[tuple[str, Any], ...] = ()


_HASH_ALL = ("MD5", "SHA1", "SHA256")  # policy/frameworks/files/hash-all-files
LOAD_EFFECTS: dict[str, LoadEffect] = {
    # Loaded by bare mode anyway (init-bare / init-frameworks-and-bifs) or without log effect.
    **{
        name: LoadEffect()
        for name in (
            "base/frameworks/files",
            "base/frameworks/analyzer",
            "base/frameworks/logging",
            "base/packet-protocols",
            "base/files/hash",
            "base/files/extract",
            "base/utils/site",
            "base/protocols/tunnels",  # only Teredo/AYIYA DPD signatures; tunnels decap anyway
        )
    },
    "base/init-default": LoadEffect(frozenset({EVERYTHING})),
    "base/protocols/conn": LoadEffect(frozenset({"conn"})),  # connection logging, no analyzer
    "base/frameworks/notice": LoadEffect(frozenset({"weird"})),
    "base/frameworks/notice/weird": LoadEffect(frozenset({"weird"})),
    "base/frameworks/tunnels": LoadEffect(frozenset({"tunnel"})),
    "base/files/x509": LoadEffect(frozenset({"x509"})),
    "protocols/conn/vlan-logging": LoadEffect(
        frozenset({"conn"}), (("policies", ("vlan-logging",)),)
    ),
    "protocols/conn/mac-logging": LoadEffect(
        frozenset({"conn"}), (("policies", ("mac-logging",)),)
    ),
    "frameworks/files/hash-all-files": LoadEffect(overrides=(("hashes", _HASH_ALL),)),
    # A policy script with state of its own: protocols/known.py (configure(engine, KnownConfig)).
    "protocols/conn/known-services": LoadEffect(overrides=(("known.loaded", True),)),
    "base/frameworks/software": LoadEffect(overrides=(("protocol_configs", ("software",)),)),
    "protocols/http/software": LoadEffect(overrides=(("software.http_software", True),)),
    "protocols/http/software-browser-plugins": LoadEffect(
        frozenset({"http", "weird", "tunnel"}),  # it loads base/protocols/http
        (("software.browser_plugins", True),),
    ),
    "frameworks/files/extract-all-files": LoadEffect(overrides=(("extract", True),)),
}


class ZeekScriptError(ValueError):
    """Zeek script text this module cannot even split into statements."""


@dataclass
class ZeekSettings:
    """The settings a Zeek command line's scripts and redefs amount to, in the order given."""

    overrides: dict[str, Any] = field(default_factory=dict)  # AnalyzeOptions field -> value
    loads: list[str] = field(default_factory=list)  # normalised names, as loaded
    features: set[str] = field(default_factory=set)  # what the loads enable (see GATED_LOGS)
    handled_events: set[str] = field(default_factory=set)
    # Event handlers whose bodies only raise notices (notice.NoticeHandler), run by the engine.
    notice_handlers: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # one human-readable item each


# -- values -------------------------------------------------------------------------------------

_INTERVAL_UNITS = {
    "usec": 1e-6,
    "msec": 1e-3,
    "sec": 1.0,
    "min": 60.0,
    "hr": 3600.0,
    "day": 86400.0,
}
_INTERVAL = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(usec|msec|sec|min|hr|day)s?$")


def parse_bool(text: str) -> bool:
    if text in ("T", "F"):
        return text == "T"
    raise ZeekScriptError(f"expected T or F, got {text!r}")


def parse_interval(text: str) -> float:
    """Zeek interval literal (``0secs``, ``1 day``, ``10min``) -> seconds."""
    m = _INTERVAL.match(text.strip())
    if not m:
        raise ZeekScriptError(f"expected an interval such as 30secs or 1day, got {text!r}")
    return float(m.group(1)) * _INTERVAL_UNITS[m.group(2)]


def _set_items(text: str) -> list[str]:
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ZeekScriptError(f"expected a set literal {{ ... }}, got {text!r}")
    inner = text[1:-1].strip()
    return [item.strip() for item in split_top(inner, ",") if item.strip()] if inner else []


def parse_subnet_set(text: str) -> tuple[str, ...]:
    """``{ 10.0.0.0/8, [2001:db8::]/32 }`` -> canonical subnet strings."""
    nets = []
    for item in _set_items(text):
        bare = item.replace("[", "").replace("]", "")
        try:
            nets.append(str(ipaddress.ip_network(bare, strict=False)))
        except ValueError as exc:
            raise ZeekScriptError(f"bad subnet {item!r}: {exc}") from exc
    return tuple(nets)


def parse_string_set(text: str) -> frozenset[str]:
    """``{ "USER", "PASS" }`` -> the strings."""
    out = set()
    for item in _set_items(text):
        if not (len(item) >= 2 and item[0] == item[-1] == '"'):
            raise ZeekScriptError(f"expected a string literal, got {item!r}")
        out.add(item[1:-1].encode().decode("unicode_escape"))
    return frozenset(out)


# -- the options the engine honours -------------------------------------------------------------


def parse_count(text: str) -> int:
    if not text.isdigit():
        raise ZeekScriptError(f"expected a count (0, 1, 2, ...), got {text!r}")
    return int(text)


def parse_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    return sign * parse_count(text.lstrip("+-"))


def parse_enum(text: str) -> str:
    """``Software::ALL_HOSTS`` or ``ALL_HOSTS`` -> the enum name without its module."""
    text = text.strip()
    if not re.fullmatch(r"[A-Za-z_][\w:]*", text):
        raise ZeekScriptError(f"expected an enum name, got {text!r}")
    return text.rsplit("::", 1)[-1]


def parse_enum_set(text: str) -> frozenset[str]:
    """``{ SMB::FILE_READ, FILE_WRITE }`` -> the enum names without their module."""
    out = set()
    for item in _set_items(text):
        if not re.fullmatch(r"[A-Za-z_][\w:]*", item):
            raise ZeekScriptError(f"expected an enum name, got {item!r}")
        out.add(item.rsplit("::", 1)[-1])
    return frozenset(out)


def protocol_config_type(protocol: str) -> type:
    """The ``<Protocol>Config`` dataclass of ``protocols/<protocol>.py`` (which also has
    ``configure(engine, config)``): where that protocol's redef-able options live."""
    module = importlib.import_module(f"{__package__}.protocols.{protocol}")
    return getattr(module, f"{protocol.capitalize()}Config")


@dataclass(frozen=True)
class Redef:
    """One redef-able Zeek option: how to read its value and which engine option it sets."""

    option: str  # AnalyzeOptions field, or "<protocol>.<field>" of that protocol's config
    parse: Callable[[str], Any]
    sets: bool = False  # a set: ``+=`` adds, ``-=`` removes


REDEFS: dict[str, Redef] = {
    "Site::local_nets": Redef("local_nets", parse_subnet_set, sets=True),
    "Tunnel::delay_teredo_confirmation": Redef("delay_teredo_confirmation", parse_bool),
    "X509::log_x509_in_files_log": Redef("x509_in_files_log", parse_bool),
    "X509::relog_known_certificates_after": Redef("x509_relog_after", parse_interval),
    "tcp_inactivity_timeout": Redef("tcp_inactivity_timeout", parse_interval),
    "udp_inactivity_timeout": Redef("udp_inactivity_timeout", parse_interval),
    "icmp_inactivity_timeout": Redef("icmp_inactivity_timeout", parse_interval),
    "ignore_checksums": Redef("ignore_checksums", parse_bool),
    "FTP::logged_commands": Redef("ftp.logged_commands", parse_string_set, sets=True),
    "FTP::default_capture_password": Redef("ftp.capture_password", parse_bool),
    "FTP::log_at_least_one_command": Redef("ftp.log_at_least_one_command", parse_bool),
    "SMB::logged_file_actions": Redef("smb.logged_file_actions", parse_enum_set, sets=True),
    "SMB::max_pending_messages": Redef("smb.max_pending_messages", parse_count),
    "SMB::enable_clear_script_state": Redef("smb.enable_clear_script_state", parse_bool),
    "SIP::sip_methods": Redef("sip.sip_methods", parse_string_set, sets=True),
    "SIP::max_request_path_length": Redef("sip.max_request_path_length", parse_count),
    "SIP::max_response_path_length": Redef("sip.max_response_path_length", parse_count),
    "DHCP::max_txid_watch_time": Redef("dhcp.max_txid_watch_time", parse_interval),
    "DHCP::max_uids_per_log_entry": Redef("dhcp.max_uids_per_log_entry", parse_count),
    "DHCP::max_msg_types_per_log_entry": Redef("dhcp.max_msg_types_per_log_entry", parse_count),
    "DHCP::max_tracked_transactions": Redef("dhcp.max_tracked_transactions", parse_count),
    "Software::asset_tracking": Redef("software.asset_tracking", parse_enum),
    "Known::service_tracking": Redef("known.service_tracking", parse_enum),
    "Known::service_udp_requires_response": Redef(
        "known.service_udp_requires_response", parse_bool
    ),
    "SMTP::mail_transaction_validation": Redef("smtp.mail_transaction_validation", parse_bool),
    "SMTP::max_invalid_mail_transactions": Redef("smtp.max_invalid_mail_transactions", parse_count),
    "SMTP::max_rcptto_addresses": Redef("smtp.max_rcptto_addresses", parse_count),
    "SMTP::max_to_addresses": Redef("smtp.max_to_addresses", parse_count),
    "SMTP::max_cc_addresses": Redef("smtp.max_cc_addresses", parse_count),
    "SMTP::max_path_length": Redef("smtp.max_path_length", parse_count),
    "SMTP::bdat_max_line_length": Redef("smtp.bdat_max_line_length", parse_count),
    "MIME::max_depth": Redef("smtp.mime_max_depth", parse_count),  # the SMTP MIME parser's
    "MIME::max_header_bytes": Redef("smtp.mime_max_header_bytes", parse_count),
    "SOCKS::default_capture_password": Redef("socks.capture_password", parse_bool),
    "QUIC::max_history_length": Redef("quic.max_history_length", parse_count),
    "QUIC::max_discarded_packet_events": Redef("quic.max_discarded_packet_events", parse_int),
    "SSL::log_include_server_certificate_subject_issuer": Redef(
        "ssl_log_subject_issuer", parse_bool
    ),
    "SSL::log_include_client_certificate_subject_issuer": Redef(
        "ssl_log_client_subject_issuer", parse_bool
    ),
    "GridFTP::size_threshold": Redef("gridftp.size_threshold", parse_count),
    "GridFTP::max_time": Redef("gridftp.max_time", parse_interval),
    "GridFTP::skip_data": Redef("gridftp.skip_data", parse_bool),
}


def option_value(name: str, protocol_configs: Mapping[str, Mapping[str, Any]]) -> Any:
    """A protocol option's value for a script expression (``GridFTP::size_threshold``): as
    redef'd in ``protocol_configs``, else its default. KeyError for options the engine lacks."""
    spec = REDEFS.get(name)
    if spec is None or "." not in spec.option:
        raise KeyError(f"{name} is not a protocol option the engine has")
    protocol, field_name = spec.option.split(".", 1)
    configured = protocol_configs.get(protocol, {})
    if field_name in configured:
        return configured[field_name]
    return getattr(protocol_config_type(protocol)(), field_name)


def _current(settings: ZeekSettings, option: str) -> Any:
    """An option's value so far: set by an earlier redef, else its default."""
    if "." in option:
        protocol, name = option.split(".", 1)
        configured = settings.overrides.get("protocol_configs", {}).get(protocol, {})
        if name in configured:
            return configured[name]
        return getattr(protocol_config_type(protocol)(), name)
    return settings.overrides.get(option, ())


def _store(settings: ZeekSettings, option: str, value: Any) -> None:
    if "." in option:
        protocol, name = option.split(".", 1)
        configs = settings.overrides.setdefault("protocol_configs", {})
        configs.setdefault(protocol, {})[name] = value
    else:
        settings.overrides[option] = value


def apply_redef(settings: ZeekSettings, name: str, op: str, value: str, where: str = "") -> None:
    """``redef name op value`` into ``settings`` (unknown names go to ``ignored``)."""
    spec = REDEFS.get(name)
    if spec is None:
        prefix = f"{where}: " if where else ""
        settings.ignored.append(
            f"{prefix}redef {name} {op} {_short(value)} (not an option the engine has)"
        )
        return
    parsed = spec.parse(value.strip())
    if op == "=":
        _store(settings, spec.option, parsed)
        return
    if not spec.sets:
        raise ZeekScriptError(f"redef {name} {op}: {name} is not a set")
    current = _current(settings, spec.option)
    if op == "+=":
        merged = tuple(current) + tuple(v for v in parsed if v not in current)
    else:
        merged = tuple(v for v in current if v not in parsed)
    _store(settings, spec.option, frozenset(merged) if isinstance(current, frozenset) else merged)


# -- loads --------------------------------------------------------------------------------------


def normalise_load(name: str) -> str:
    """Zeek's search path has both ``scripts/`` and ``scripts/policy/``: one spelling each."""
    name = name.strip().strip('"')
    for suffix in (".zeek", "/__load__", "/main"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.startswith("policy/"):
        name = name[len("policy/") :]
    return name


def apply_load(settings: ZeekSettings, name: str, where: str = "") -> None:
    """``@load name``: the features and options it brings, or a note in ``ignored``."""
    norm = normalise_load(name)
    at = f"{where}: " if where else ""
    settings.loads.append(norm)
    effect = LOAD_EFFECTS.get(norm)
    if effect is None and norm.startswith("base/protocols/"):
        from . import protocols  # noqa: F401  (registers every analyzer)
        from .api import REGISTRY

        proto = norm.split("/")[2]
        settings.features |= PROTOCOL_PULLS.get(proto, frozenset())
        settings.features |= {proto} | EXTRA_ANALYZERS.get(proto, frozenset())
        if proto not in REGISTRY:
            settings.ignored.append(
                f"{at}@load {name} (the built-in engine has no {proto} analyzer)"
            )
        elif norm.count("/") > 2 and norm != "base/protocols/ftp/gridftp":
            settings.ignored.append(f"{at}@load {name} (read as the whole base/protocols/{proto})")
        return
    if effect is None:
        settings.ignored.append(f"{at}@load {name} (a script the built-in engine does not know)")
        return
    settings.features |= effect.features
    for option, value in effect.overrides:
        if option == "policies":
            known = tuple(settings.overrides.get("policies", ()))
            settings.overrides["policies"] = known + tuple(v for v in value if v not in known)
        elif option == "protocol_configs":  # these configs exist (redefs may fill them in)
            configs = settings.overrides.setdefault("protocol_configs", {})
            for protocol in value:
                configs.setdefault(protocol, {})
        elif "." in option:  # a field of a protocol's config
            _store(settings, option, value)
        else:
            settings.overrides[option] = value


# -- script text --------------------------------------------------------------------------------


def _outside_strings(text: str) -> Iterator[tuple[int, str]]:
    """``(index, char)`` of every character outside Zeek string literals (escapes honoured)."""
    quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        else:
            yield i, ch
        i += 1


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside strings and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in _outside_strings(text):
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _strip_comment(line: str) -> str:
    for i, ch in _outside_strings(line):
        if ch == "#":
            return line[:i]
    return line


_BODY_STATEMENTS = ("event", "hook", "function", "export", "module")


def statements(text: str, origin: str = "<script>") -> Iterator[tuple[int, str]]:
    """(line number, text) of each top-level directive (``@...``) or statement, comments gone.

    A statement ends at ``;`` outside braces, or, for ``event``/``hook``/``function``/
    ``export`` blocks, at the brace that closes its body.
    """
    buf: list[str] = []
    start_line = 0
    depth = 0
    quote = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not buf and depth == 0 and line.strip().startswith("@"):
            yield number, line.strip()
            continue
        i = 0
        while i < len(line):
            ch = line[i]
            if not buf and not ch.isspace():
                start_line = number
            buf.append(ch)
            if quote:
                if ch == "\\" and i + 1 < len(line):
                    buf.append(line[i + 1])
                    i += 1
                elif ch == '"':
                    quote = False
            elif ch == '"':
                quote = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth < 0:
                    raise ZeekScriptError(f"{origin}:{number}: unbalanced '}}'")
                head = "".join(buf).split(None, 1)[0] if "".join(buf).strip() else ""
                if depth == 0 and head in _BODY_STATEMENTS:
                    yield start_line, "".join(buf).strip()
                    buf = []
            elif ch == ";" and depth == 0:
                stmt = "".join(buf).strip()
                if stmt != ";":
                    yield start_line, stmt
                buf = []
            i += 1
        if quote:
            raise ZeekScriptError(f"{origin}:{number}: unterminated string")
        if buf:
            buf.append("\n")
    if depth:
        raise ZeekScriptError(f"{origin}: {depth} unclosed '{{' at the end")
    rest = "".join(buf).strip()
    if rest:
        raise ZeekScriptError(f"{origin}:{start_line}: statement without ';': {_short(rest)}")


_REDEF = re.compile(r"^redef\s+([A-Za-z_][\w:]*)\s*(\+=|-=|=)\s*(.*?)\s*;?$", re.S)
_EVENT = re.compile(r"^event\s+([A-Za-z_][\w:]*)\s*\(")
_MODULE = re.compile(r"^module\s+([A-Za-z_]\w*)\s*;?$")
_LOAD = re.compile(r"^@load\s+(\S+)\s*$")
_NOTICE_TYPES = re.compile(r"^redef\s+enum\s+Notice::Type\s*\+=\s*\{[\w\s,:]*\}\s*;?$")


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _qualify(name: str, module: str) -> str:
    return name if "::" in name or module == "GLOBAL" or name in REDEFS else f"{module}::{name}"


def apply_script(settings: ZeekSettings, text: str, origin: str = "<script>") -> None:
    """Read one script's directives and statements into ``settings``."""
    module = "GLOBAL"
    for number, stmt in statements(text, origin):
        where = f"{origin}:{number}"
        if stmt.startswith("@"):
            m = _LOAD.match(stmt)
            if m:
                apply_load(settings, m.group(1), where)
            else:
                settings.ignored.append(f"{where}: directive {_short(stmt)}")
            continue
        m = _MODULE.match(stmt)
        if m:
            module = m.group(1)
            continue
        m = _EVENT.match(stmt)
        if m:
            event = m.group(1)
            settings.handled_events.add(event)
            from .notice import NoticeScriptError, read_handler

            try:
                handler = read_handler(event, stmt, module)
            except NoticeScriptError as exc:
                settings.ignored.append(
                    f"{where}: the body of event {event} (handlers do not run: {exc})"
                )
                continue
            known = settings.notice_handlers.get(event, ())
            settings.notice_handlers[event] = (*known, handler)
            continue
        if _NOTICE_TYPES.match(stmt):
            continue  # new notice types: notices are logged by name, nothing to declare
        m = _REDEF.match(stmt)
        if m and not stmt.startswith(("redef enum", "redef record")):
            name, op, value = m.groups()
            try:
                apply_redef(settings, _qualify(name, module), op, value, where)
            except ZeekScriptError as exc:
                raise ZeekScriptError(f"{where}: {exc}") from exc
            continue
        settings.ignored.append(f"{where}: {_short(stmt)}")


def apply_command_redef(settings: ZeekSettings, arg: str) -> None:
    """A command-line redef (``NAME=VALUE``, ``NAME+=VALUE``) as Zeek reads it."""
    m = _COMMAND_REDEF.match(arg)
    if not m:
        raise ZeekScriptError(f"not a NAME=VALUE redef: {arg!r}")
    apply_redef(settings, m.group(1), m.group(2), m.group(3))


_COMMAND_REDEF = re.compile(r"^\s*([A-Za-z_][\w:]*)\s*(\+=|-=|=)\s*(.*?)\s*$", re.S)
# First path parts of Zeek's script tree (scripts/ and scripts/policy/): a positional argument
# starting with one of them is a script to load, as Zeek reads ``zeek -r t.pcap base/protocols/dns``.
SCRIPT_TREE_TOPS = frozenset(
    {"base", "policy", "protocols", "frameworks", "misc", "tuning", "files", "integration"}
)


def is_command_redef(arg: str) -> bool:
    return bool(_COMMAND_REDEF.match(arg)) and "/" not in arg.split("=", 1)[0]


def is_script_name(arg: str) -> bool:
    """A Zeek script named by path in Zeek's tree (``base/protocols/conn``), not a file here."""
    return "." not in arg.rsplit("/", 1)[-1] and arg.split("/", 1)[0] in SCRIPT_TREE_TOPS


@dataclass(frozen=True)
class ZeekArgs:
    """Positional arguments of a Zeek command line, sorted by what Zeek makes of them."""

    traces: tuple[str, ...]
    scripts: tuple[str, ...]  # *.zeek files and script names, in order, with the redefs
    order: tuple[tuple[str, str], ...]  # ("file" | "load" | "redef", arg) in command-line order


def classify_args(args: Iterable[str], is_file: Callable[[str], bool]) -> ZeekArgs:
    """``*.zeek``/``*.bro`` files, Zeek script names and ``NAME=VALUE`` redefs are scripts;
    everything else is a trace (``is_file`` tells whether a path exists here)."""
    traces, scripts, order = [], [], []
    for arg in args:
        if arg.endswith((".zeek", ".bro")):
            kind = "file"
        elif is_command_redef(arg) and not is_file(arg):
            kind = "redef"
        elif is_script_name(arg) and not is_file(arg):
            kind = "load"
        else:
            traces.append(arg)
            continue
        scripts.append(arg)
        order.append((kind, arg))
    return ZeekArgs(tuple(traces), tuple(scripts), tuple(order))


def settings_from_args(
    order: Iterable[tuple[str, str]], read_text: Callable[[str], str]
) -> ZeekSettings:
    """Apply scripts, script names, redefs and ``-e`` code ("code") in command-line order."""
    settings = ZeekSettings()
    for kind, arg in order:
        if kind == "file":
            apply_script(settings, read_text(arg), arg)
        elif kind == "code":
            apply_script(settings, arg, "-e")
        elif kind == "load":
            apply_load(settings, arg)
        else:
            apply_command_redef(settings, arg)
    return settings


def enabled_logs(features: Iterable[str]) -> frozenset[str]:
    """The gated logs (see :data:`GATED_LOGS`) that ``features`` turn on."""
    have = set(features)
    if EVERYTHING in have:
        return frozenset(GATED_LOGS)
    return frozenset(log for log, feature in GATED_LOGS.items() if feature in have)


def enabled_analyzers(features: Iterable[str], registered: Iterable[str]) -> frozenset[str]:
    """The ``registered`` analyzers ``features`` turn on (bare mode attaches only these)."""
    have = set(features)
    names = frozenset(registered)
    return names if EVERYTHING in have else names & have


def loaded_server_ports(
    specs: Iterable[Any], default: Mapping[str, frozenset[int]]
) -> dict[str, frozenset[int]]:
    """Zeek's likely_server_ports when only ``specs``' scripts are loaded (bare mode): the
    packet protocols' ports plus each loaded analyzer's ports that ``default`` (the full,
    default-scripts set) counts as server ports. Loaded scripts of protocols the engine does
    not implement add nothing here (their ports are not known to it)."""
    out = {}
    for transport, server in default.items():
        ports = set(PACKET_PROTOCOL_SERVER_PORTS.get(transport, ()))
        for spec in specs:
            if transport in spec.transports:
                ports |= spec.ports & server
        out[transport] = frozenset(ports)
    return out
