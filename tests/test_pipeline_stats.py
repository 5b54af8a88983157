"""Faust stats over the log topics: per-minute bytes per host/service, DNS queries, new hosts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_pipeline_support import private_settings, stop_worker
from wirestream.processors.service import LogEncoder
from wirestream.processors.stats import conn_bytes, conn_service, window_rows

from wirestream import topics
from wirestream.admin import ensure_topics
from wirestream.kafka import make_producer


def test_pure_helpers() -> None:
    assert conn_bytes({"orig_bytes": 10, "resp_bytes": None}) == 10
    assert conn_service({"service": None}) == "-" and conn_service({"service": "dns"}) == "dns"
    raw = {("a", (60.0, 119.9)): 5, ("a", (120.0, 179.9)): 7, ("b", (60.0, 119.9)): 1}
    assert window_rows(raw) == {"a": {"60": 5, "120": 7}, "b": {"60": 1}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.broker
@pytest.mark.timeout(180)
def test_stats_tables_over_streamed_records(settings, tmp_path: Path) -> None:
    s = private_settings(settings)
    ensure_topics(s, [topics.log_topic_spec(g, s) for g in ("conn", "dns")])
    from wirestream.schemas.store import SchemaStore

    encoder = LogEncoder(s, "lab", SchemaStore(s).publish)
    base = 1_600_000_020.0  # minute windows start at 1_600_000_020 - 20 = ...000
    conns = [
        {
            "ts": base + 1,
            "uid": "C1",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 1,
            "id.resp_h": "10.0.0.9",
            "id.resp_p": 53,
            "proto": "udp",
            "service": "dns",
            "orig_bytes": 40,
            "resp_bytes": 60,
        },
        {
            "ts": base + 2,
            "uid": "C2",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 2,
            "id.resp_h": "10.0.0.8",
            "id.resp_p": 80,
            "proto": "tcp",
            "service": "http",
            "orig_bytes": 100,
            "resp_bytes": 900,
        },
        {
            "ts": base + 70,
            "uid": "C3",
            "id.orig_h": "10.0.0.2",
            "id.orig_p": 3,
            "id.resp_h": "10.0.0.8",
            "id.resp_p": 80,
            "proto": "tcp",
            "orig_bytes": 5,
            "resp_bytes": None,
        },
    ]
    dns = [
        {
            "ts": base + 1,
            "uid": "C1",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 1,
            "id.resp_h": "10.0.0.9",
            "id.resp_p": 53,
            "proto": "udp",
            "query": "example.com",
        },
        {
            "ts": base + 3,
            "uid": "C4",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 9,
            "id.resp_h": "10.0.0.9",
            "id.resp_p": 53,
            "proto": "udp",
            "query": "example.com",
        },
    ]
    producer = make_producer(s)
    for log_name, records in (("conn", conns), ("dns", dns)):
        for r in records:
            m = encoder.encode(log_name, r, "cap")
            producer.produce(
                m.topic, key=m.key, value=m.value, headers=m.headers, timestamp=m.timestamp_ms
            )
    assert producer.flush(30) == 0

    port = _free_port()
    env = {
        **os.environ,
        "WIRESTREAM_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "WIRESTREAM_TOPIC_PREFIX": s.topic_prefix,
        "WIRESTREAM_HOME": str(tmp_path),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "wirestream", "stats", "--web-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    want_hosts = {"10.0.0.1": {"1600000020": 1100}, "10.0.0.2": {"1600000080": 5}}
    try:
        deadline = time.monotonic() + 150
        stats: dict = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/", timeout=5) as resp:
                    stats = json.loads(resp.read())
            except OSError:
                stats = {}
            if (
                stats.get("bytes_per_host") == want_hosts
                and len(stats.get("first_seen", {})) == 4
                and stats.get("dns_queries")
            ):
                break
            time.sleep(2)
    finally:
        stop_worker(worker)
    start = f"{int(base - base % 60)}"
    assert start == "1600000020"
    assert stats["bytes_per_host"] == want_hosts
    assert stats["bytes_per_service"] == {
        "dns": {start: 100},
        "http": {start: 1000},
        "-": {"1600000080": 5},
    }
    assert stats["dns_queries"] == {"example.com": {start: 2}}
    assert stats["first_seen"] == {
        "10.0.0.1": base + 1,
        "10.0.0.9": base + 1,
        "10.0.0.8": base + 2,
        "10.0.0.2": base + 70,
    }
