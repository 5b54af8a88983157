"""Zeek's command line and script subset -> the engine's options (processors/engine/zeek_script)."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from wirestream.processors.analyze_cli import AnalyzeOptions
from wirestream.processors.engine.api import REGISTRY
from wirestream.processors.engine.protocols.ftp import LOGGED_COMMANDS
from wirestream.processors.engine.zeek_script import (
    EXTRA_ANALYZERS,
    LOAD_EFFECTS,
    REDEFS,
    ZeekScriptError,
    ZeekSettings,
    apply_command_redef,
    apply_script,
    classify_args,
    enabled_analyzers,
    enabled_logs,
    parse_interval,
    protocol_config_type,
    settings_from_args,
    statements,
)


def script(text: str) -> ZeekSettings:
    settings = ZeekSettings()
    apply_script(settings, text, "t.zeek")
    return settings


def test_every_override_names_an_analyze_option_and_every_extra_analyzer_exists():
    fields = {f.name for f in dataclasses.fields(AnalyzeOptions)}
    assert {r.option for r in REDEFS.values() if "." not in r.option} <= fields
    load_fields = [o for e in LOAD_EFFECTS.values() for o, _ in e.overrides if "." in o]
    for option in [r.option for r in REDEFS.values()] + load_fields:
        if "." in option:
            protocol, name = option.split(".")
            config = protocol_config_type(protocol)
            assert name in {f.name for f in dataclasses.fields(config)}, option
            assert hasattr(sys.modules[config.__module__], "configure")
    assert {o for e in LOAD_EFFECTS.values() for o, _ in e.overrides if "." not in o} <= fields
    assert set().union(*EXTRA_ANALYZERS.values()) <= set(REGISTRY)


def test_history_flip_script():
    s = script(
        "# a comment; with a semicolon\n"
        "@load base/protocols/http\n"
        "@load policy/protocols/conn/mac-logging\n\n"
        "redef Site::local_nets = { 125.190.109.0/24 };"
    )
    assert s.overrides == {"policies": ("mac-logging",), "local_nets": ("125.190.109.0/24",)}
    assert {"http", "conn", "weird", "tunnel"} <= s.features
    assert s.loads == ["base/protocols/http", "protocols/conn/mac-logging"]
    assert s.ignored == []


def test_set_redefs_add_and_remove():
    s = script('redef FTP::logged_commands += { "<init>", "AUTH" };\n')
    assert s.overrides["protocol_configs"]["ftp"]["logged_commands"] == LOGGED_COMMANDS | {
        "<init>",
        "AUTH",
    }
    s = script('redef FTP::logged_commands -= { "USER" };')
    assert s.overrides["protocol_configs"]["ftp"]["logged_commands"] == LOGGED_COMMANDS - {"USER"}
    s = ZeekSettings()
    apply_command_redef(s, "Site::local_nets+={192.168.2.0/24}")
    apply_command_redef(s, "Site::local_nets += { 10.0.0.0/8, [2001:db8::]/32 }")
    assert s.overrides["local_nets"] == ("192.168.2.0/24", "10.0.0.0/8", "2001:db8::/32")


def test_values_are_typed_and_checked():
    s = script("redef X509::relog_known_certificates_after = 0secs;")
    assert s.overrides == {"x509_relog_after": 0.0}
    assert parse_interval("1 day") == 86400.0 and parse_interval("10min") == 600.0
    with pytest.raises(ZeekScriptError, match="T or F"):
        script("redef Tunnel::delay_teredo_confirmation = maybe;")
    with pytest.raises(ZeekScriptError, match="bad subnet"):
        script("redef Site::local_nets = { 300.1.2.0/24 };")
    with pytest.raises(ZeekScriptError, match="not a set"):
        script("redef X509::log_x509_in_files_log += T;")


def test_everything_else_is_reported_not_silently_dropped():
    s = script(
        "module MyScript;\n"
        "redef size_threshold = 2;\n"
        "redef enum Log::ID += {\n    LOG\n};\n"
        "redef test_get_file_name = function(f: fa_file): string\n"
        '    {\n    return fmt("%s-file", f$id);\n    };\n'
        'event icmp_redirect(c: connection, tgt: addr)\n\t{ print "}"; }\n'
        "@load protocols/http/detect-sqli\n"
        "@load base/protocols/smtp\n"
        "@load base/protocols/irc\n"
        "global n = 1;\n"
    )
    assert s.handled_events == {"icmp_redirect"}
    ignored = "\n".join(s.ignored)
    assert "t.zeek:2: redef MyScript::size_threshold = 2" in ignored  # module-qualified
    assert "redef enum Log::ID" in ignored
    assert "t.zeek:6: redef MyScript::test_get_file_name = function" in ignored
    assert "event icmp_redirect" in ignored
    assert "t.zeek:12: @load protocols/http/detect-sqli (a script the built-in engine" in ignored
    assert "no irc analyzer" in ignored  # a protocol the engine does not analyse is named
    assert "smtp" not in ignored and "weird" in s.features  # smtp is analysed, and loads weird
    assert "global n = 1" in ignored
    assert len(s.ignored) == 7
    assert s.overrides == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("event zeek_init() {", "unclosed"),
        ("}", "unbalanced"),
        ('redef X = "abc;', "unterminated string"),
        ("redef Site::local_nets = {}", "without ';'"),
    ],
)
def test_broken_syntax_is_an_error(text, message):
    with pytest.raises(ZeekScriptError, match=message):
        list(statements(text, "t.zeek"))


def test_classify_zeek_positional_arguments():
    args = [
        "x.pcap",
        "base/protocols/tunnels",
        "protocols/conn/known-services",
        "Tunnel::delay_teredo_confirmation=T",
        "Site::local_nets+={192.168.2.0/24}",
        "/tmp/test.zeek",
        "missing.pcap",
    ]
    parsed = classify_args(args, is_file=lambda a: a == "x.pcap")
    assert parsed.traces == ("x.pcap", "missing.pcap")  # a missing trace still errors later
    assert [k for k, _ in parsed.order] == ["load", "load", "redef", "redef", "file"]


def test_command_line_order_and_reading():
    order = [("file", "a.zeek"), ("redef", "Tunnel::delay_teredo_confirmation=T")]
    texts = {"a.zeek": "redef Tunnel::delay_teredo_confirmation = F;"}
    s = settings_from_args(order, texts.__getitem__)
    assert s.overrides == {"delay_teredo_confirmation": True}  # the later one wins, as in Zeek


def test_bare_mode_features():
    s = script("@load base/protocols/ssl\n")
    assert enabled_logs(s.features) == {"weird", "x509", "ocsp"}  # no conn.log, no tunnel.log
    assert enabled_analyzers(s.features, REGISTRY) == {"ssl", "dtls"}
    everything = script("@load base/init-default\n").features
    assert enabled_analyzers(everything, REGISTRY) == set(REGISTRY)
    conn = script("@load base/protocols/conn")
    assert enabled_logs(conn.features) == {"conn"} and conn.ignored == []


def test_loaded_server_ports_are_tunnels_plus_loaded_analyzers_server_ports():
    from wirestream.processors.engine.sessions import LIKELY_SERVER_PORTS
    from wirestream.processors.engine.zeek_script import loaded_server_ports

    none = loaded_server_ports([], LIKELY_SERVER_PORTS)
    assert none["tcp"] == frozenset() and 3544 in none["udp"] and 53 not in none["udp"]
    dns = loaded_server_ports([REGISTRY["dns"]], LIKELY_SERVER_PORTS)
    assert 53 in dns["udp"] and 53 in dns["tcp"] and 80 not in dns["tcp"]
    assert dns["udp"] <= LIKELY_SERVER_PORTS["udp"]


def test_protocol_options():
    s = script(
        "redef SMB::logged_file_actions += { SMB::FILE_READ, FILE_WRITE };\n"
        "redef SMB::max_pending_messages = 5;\n"
        "redef DHCP::max_txid_watch_time = 1min;\n"
    )
    smb = s.overrides["protocol_configs"]["smb"]
    assert smb["logged_file_actions"] >= {"FILE_OPEN", "FILE_READ", "FILE_WRITE"}
    assert smb["max_pending_messages"] == 5
    assert s.overrides["protocol_configs"]["dhcp"] == {"max_txid_watch_time": 60.0}
    with pytest.raises(ZeekScriptError, match="count"):
        script("redef SIP::max_request_path_length = -1;")


def test_smtp_mime_and_socks_options():
    s = script(
        "redef SMTP::max_rcptto_addresses = 2;\n"
        "redef MIME::max_depth = 3;\n"
        "redef SOCKS::default_capture_password = T;\n"
    )
    configs = s.overrides["protocol_configs"]
    assert configs["smtp"] == {"max_rcptto_addresses": 2, "mime_max_depth": 3}
    assert configs["socks"] == {"capture_password": True}


def test_every_protocol_redef_names_a_field_of_that_protocols_config():
    for name, redef in REDEFS.items():
        protocol, dot, field = redef.option.partition(".")
        if dot:
            fields = {f.name for f in dataclasses.fields(protocol_config_type(protocol))}
            assert field in fields, name


def test_bare_mode_can_enable_every_registered_analyzer():
    # An analyzer is enabled by loading base/protocols/<its name>, or comes with another
    # package (EXTRA_ANALYZERS); a new analyzer named otherwise needs an entry there.
    for name in REGISTRY:
        s = script(f"@load base/protocols/{name}\n")
        extra = {a for package in EXTRA_ANALYZERS.values() for a in package}
        assert name in enabled_analyzers(s.features, REGISTRY) or name in extra, name
