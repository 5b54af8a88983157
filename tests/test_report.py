"""The seed notebook's analyses over hand-made frames (pure; no broker)."""

from __future__ import annotations

import pandas as pd
from wirestream.consumers.report import (
    build_report,
    http_bytes,
    http_bytes_by_host_and_mime,
    non_http_port,
    write_report,
)


def _http() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "host": ["a.example", "a.example", "b.example", None],
            "id.resp_h": ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"],
            "uri": ["/", "/logo.png", "/x.json", "/"],
            "resp_mime_types": [["text/html"], ["image/png"], ["application/json"], None],
            "response_body_len": pd.array([100, 2000, 30, 0], dtype="Int64"),
        }
    )


def _conn() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id.resp_p": pd.array([80, 53, 443], dtype="UInt16"),
            "orig_bytes": pd.array([10, None, 5], dtype="Int64"),
            "resp_bytes": pd.array([100, 20, None], dtype="Int64"),
            "duration": pd.to_timedelta([1.5, None, 0.25], unit="s"),
        }
    )


def test_http_bytes_grouping_sums_and_orders():
    table = http_bytes(_http())
    assert table.iloc[0]["response_body_len"] == 2000
    assert table.loc[("a.example", "192.0.2.1", "text/html", "/"), "response_body_len"] == 100
    assert ("-", "192.0.2.3", "-", "/") in table.index


def test_stacked_plot_table():
    table = http_bytes_by_host_and_mime(_http())
    assert table.loc["a.example", "image/png"] == 2000
    assert table.loc["b.example", "image/png"] == 0


def test_non_port_80_and_summary():
    report = build_report({"conn": _conn(), "http": _http()})
    assert list(non_http_port(_conn())["id.resp_p"]) == [53, 443]
    summary = report.tables["conn bytes and packets"]
    assert summary.loc["count", "orig_bytes"] == 2
    assert summary.loc["max", "duration"] == 1.5


def test_write_report_renders_png_and_html(tmp_path):
    written = write_report({"conn": _conn(), "http": _http()}, tmp_path)
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http_bytes.png" in written["html"].read_text()
    assert "a.example" in written["text"].read_text()
