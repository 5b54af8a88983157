"""The Zeek log tailer: records onto zeek.<log>, malformed lines to the dead-letter topic."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from test_pipeline_support import private_settings, read_all
from test_processor import read_log
from wirestream.producers.zeek_tailer import ZeekLogTailer

from wirestream import topics

pytestmark = [pytest.mark.broker]


@pytest.fixture
def pipeline_settings(settings):
    """Settings with a private topic namespace on the real broker."""
    return private_settings(settings)


def _dead_letters(settings) -> list[dict]:
    topic = topics.system_topic(topics.DEAD_LETTER_TOPIC, settings)
    return [json.loads(m.value()) for m in read_all(settings, topic)]


@pytest.mark.timeout(120)
def test_tailer_publishes_records_and_dead_letters_bad_lines(
    shared: Path, tmp_path: Path, pipeline_settings
) -> None:
    source = (
        (shared / "samples" / "zeek-logs" / "tsv-2014" / "conn.log")
        .read_text()
        .splitlines(keepends=True)
    )
    body = [line for line in source if not line.startswith("#close")]
    data_lines = [line for line in body if not line.startswith("#")]
    bad = "1379288668.0\tonly-three\tfields\n"
    path = tmp_path / "conn.log"
    path.write_text("".join(body[:12]) + bad + "".join(body[12:]))
    result = ZeekLogTailer(pipeline_settings, sensor="tap").tail(path)
    assert result.log == "conn"
    assert result.records == len(data_lines) and result.dead_letters == 1
    rows = read_log(pipeline_settings, "conn")
    assert len(rows) == len(data_lines)
    assert {r[3]["sensor"] for r in rows} == {"tap"}
    assert all(r[1] == r[4]["uid"].encode() for r in rows)
    (letter,) = _dead_letters(pipeline_settings)
    assert letter["line"] == 13 and "fields" in letter["reason"] and letter["text"] == bad.strip()


@pytest.mark.timeout(120)
def test_tailer_follows_a_growing_log(shared: Path, tmp_path: Path, pipeline_settings) -> None:
    lines = (
        (shared / "samples" / "zeek-logs" / "tsv-2014" / "dns.log")
        .read_text()
        .splitlines(keepends=True)
    )
    header = [line for line in lines if line.startswith("#") and not line.startswith("#close")]
    data = [line for line in lines if not line.startswith("#")]
    path = tmp_path / "dns.log"
    path.write_text("".join(header) + data[0])
    stop = threading.Event()
    tailer = ZeekLogTailer(pipeline_settings)
    out = {}
    thread = threading.Thread(
        target=lambda: out.update(r=tailer.tail(path, follow=True, stop=stop.is_set))
    )
    thread.start()
    time.sleep(2)
    with path.open("a") as f:
        for line in data[1:]:
            f.write(line)
    time.sleep(2)
    stop.set()
    thread.join(30)
    assert out["r"].records == len(data)
    assert len(read_log(pipeline_settings, "dns")) == len(data)


def _log_topics(settings) -> set[str]:
    from wirestream.kafka import make_admin

    names = make_admin(settings).list_topics(timeout=15).topics
    return {n for n in names if n.startswith(settings.topic_prefix + "zeek.")}


@pytest.mark.timeout(120)
def test_send_zeek_logs_refuses_a_file_that_is_no_zeek_log(
    tmp_path: Path, pipeline_settings
) -> None:
    """``send --zeek-logs README.md`` used to publish each line into a new ``zeek.README``."""
    from click.testing import CliRunner

    from wirestream.cli import cli

    readme = tmp_path / "README.md"
    readme.write_text("# wirestream\n\nZeek logs from packet captures, via Kafka.\n")
    s = pipeline_settings
    env = {
        "WIRESTREAM_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "WIRESTREAM_TOPIC_PREFIX": s.topic_prefix,
    }
    result = CliRunner().invoke(cli, ["send", "--zeek-logs", str(readme)], env=env)
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert "README.md: not a Zeek log" in line
    direct = ZeekLogTailer(s).tail(readme)
    assert direct.records == 0 and "not a Zeek log" in (direct.error or "")
    assert _log_topics(s) == set()


@pytest.mark.timeout(120)
def test_confluent_wire_format_reaches_the_topic_and_reads_back(
    shared: Path, tmp_path: Path, pipeline_settings
) -> None:
    """wire_format = "confluent": messages carry the registry id, and read() decodes them."""
    from wirestream.consumers import read
    from wirestream.schemas.registry_server import RegistryState, serve_in_thread

    source = shared / "samples" / "zeek-logs" / "tsv-2014" / "dns.log"
    lines = source.read_text().splitlines(keepends=True)
    path = tmp_path / "dns.log"
    path.write_text("".join(line for line in lines if not line.startswith("#close")))
    server, url = serve_in_thread(RegistryState())
    try:
        confluent = pipeline_settings.with_overrides(
            wire_format="confluent", schema_registry_url=url
        )
        result = ZeekLogTailer(confluent, sensor="tap").tail(path)
        topic = topics.log_topic("dns", confluent)
        values = [m.value() for m in read_all(confluent, topic)]
        assert len(values) == result.records > 0
        assert all(v[:1] == b"\x00" for v in values)  # Confluent magic, not C3 01
        frame = read("dns", settings=confluent, progress=False)
    finally:
        server.shutdown()
    assert len(frame) == result.records
    assert frame["query"].notna().any()
