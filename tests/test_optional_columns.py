"""Optional columns (policy scripts, log filter options) land where Zeek writes them."""

from __future__ import annotations

import json

import pytest
from wirestream.processors.analyze_cli import AnalyzeOptions, LogFolderSink, optional_log_columns
from wirestream.processors.engine.zeek_script import ZeekSettings, apply_script
from wirestream.schemas.optional_columns import (
    BUNDLED,
    columns_of_option,
    generate,
    with_optional_columns,
)
from wirestream.schemas.zeek_types import zeek_log_schemas

SCHEMAS = zeek_log_schemas()
SERVER = "SSL::log_include_server_certificate_subject_issuer"
CLIENT = "SSL::log_include_client_certificate_subject_issuer"


def _tail(names: list[str], n: int) -> list[str]:
    return names[-n:]


def test_filtered_ssl_columns_keep_their_record_place():
    base = SCHEMAS["ssl"].names
    names = with_optional_columns(SCHEMAS["ssl"], ["subject", "issuer"]).names
    at = base.index("client_cert_chain_fps") + 1
    assert names == [*base[:at], "subject", "issuer", *base[at:]]
    assert names[-1] == "sni_matches_cert"
    both = with_optional_columns(
        SCHEMAS["ssl"], ["client_issuer", "client_subject", "issuer", "subject"]
    ).names  # record order, whatever order they are asked in
    assert both[at : at + 4] == ["subject", "issuer", "client_subject", "client_issuer"]
    client = with_optional_columns(SCHEMAS["ssl"], columns_of_option(CLIENT)["ssl"]).names
    assert client[at : at + 3] == ["client_subject", "client_issuer", "sni_matches_cert"]


def test_policy_columns_follow_the_base_columns_in_load_order():
    conn = SCHEMAS["conn"]
    vlan_first = with_optional_columns(
        conn, ["vlan", "inner_vlan", "orig_l2_addr", "resp_l2_addr"]
    ).names
    assert vlan_first[: len(conn.names)] == conn.names
    assert _tail(vlan_first, 4) == ["vlan", "inner_vlan", "orig_l2_addr", "resp_l2_addr"]
    mac_first = with_optional_columns(conn, ["orig_l2_addr", "resp_l2_addr", "vlan"]).names
    assert _tail(mac_first, 3) == ["orig_l2_addr", "resp_l2_addr", "vlan"]
    types = {c.name: str(c.type) for c in with_optional_columns(conn, ["vlan"]).columns}
    assert types["vlan"] == "int"
    assert with_optional_columns(conn, []) is conn


def test_unknown_optional_column_is_an_error():
    with pytest.raises(ValueError, match="no optional column bogus"):
        with_optional_columns(SCHEMAS["ssl"], ["bogus"])


def test_options_from_script_and_policies_reach_the_sink(tmp_path):
    settings = ZeekSettings()
    apply_script(settings, f"redef {SERVER}=T;\n@load protocols/conn/mac-logging\n", "t.zeek")
    options = AnalyzeOptions(
        **{k: v for k, v in settings.overrides.items() if k != "policies"},
        policies=(*settings.overrides["policies"], "vlan-logging"),
    )
    columns = optional_log_columns(options)
    assert columns == {
        "conn": ["orig_l2_addr", "resp_l2_addr", "vlan", "inner_vlan"],
        "ssl": ["subject", "issuer"],
    }
    sink = LogFolderSink(tmp_path, optional_columns=columns)
    sink.log("ssl", {"ts": 1.0, "uid": "C1", "subject": "CN=x", "issuer": "CN=y"})
    sink.close()
    lines = (tmp_path / "ssl.log").read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    assert fields == with_optional_columns(SCHEMAS["ssl"], ["subject", "issuer"]).names
    row = next(line for line in lines if not line.startswith("#")).split("\t")
    assert row[fields.index("subject")] == "CN=x" and row[fields.index("sni_matches_cert")] == "-"


def test_bundled_json_is_generated_from_zeeks_field_lists(shared):
    meta = json.loads((shared / "zeek-ref" / "log_schemas_meta.json").read_text())
    assert json.loads(BUNDLED.read_text()) == generate(meta)
    assert "client_cert_chain_fps, subject issuer client_subject client_issuer" in (
        meta["logs"]["ssl"]["note"].replace(":", ",")
    )


@pytest.mark.parametrize(
    ("case", "log", "names"),
    [
        ("scripts.base.protocols.rdp.rdp-to-ssl", "ssl", ["subject", "issuer"]),
        ("scripts.policy.protocols.conn.vlan-logging", "conn", ["vlan", "inner_vlan"]),
    ],
)
def test_headers_match_zeeks_baselines(shared, case, log, names):
    text = (shared / "zeek-ref" / "cases" / case / "baseline" / f"{log}.log").read_text()
    header = {
        line.split("\t", 1)[0]: line.split("\t")[1:]
        for line in text.splitlines()
        if line.startswith(("#fields", "#types"))
    }
    schema = with_optional_columns(SCHEMAS[log], names)
    assert header["#fields"] == schema.names
    assert header["#types"] == [str(c.type) for c in schema.columns]
