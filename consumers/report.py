"""The seed notebook's analyses, as pure functions over a capture's DataFrames.

"PCAP to Pandas DataFrame" looked at DNS queries, the conn table and its byte/packet statistics,
non-port-80 connections, HTTP response bytes grouped by host, responder, MIME type and URI, and a
stacked bar plot of response bytes per host by MIME type. ``wirestream report``, the demo and
``notebooks/pcap_to_dataframe.ipynb`` all call these, so the three always agree.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CONN_NUMBERS = [
    "duration",
    "orig_bytes",
    "resp_bytes",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
]


def dns_queries(dns: pd.DataFrame) -> pd.DataFrame:
    """Query, answers and query type, as the seed showed them."""
    return dns[[c for c in ("query", "answers", "qtype_name") if c in dns.columns]]


def conn_summary(conn: pd.DataFrame) -> pd.DataFrame:
    """``describe()`` of the byte and packet columns (durations in seconds)."""
    numbers = conn[[c for c in CONN_NUMBERS if c in conn.columns]].copy()
    if "duration" in numbers and pd.api.types.is_timedelta64_dtype(numbers["duration"]):
        numbers["duration"] = numbers["duration"].dt.total_seconds()
    return numbers.astype("Float64").describe()


def non_http_port(conn: pd.DataFrame, port: int = 80) -> pd.DataFrame:
    """Connections whose responder port is not ``port``."""
    return conn[conn["id.resp_p"] != port]


def _first_mime(value: object) -> str:
    if isinstance(value, list | tuple) and value:
        return str(value[0])
    if (
        hasattr(value, "__len__") and not isinstance(value, str) and len(value)
    ):  # numpy/arrow arrays
        return str(value[0])
    return (
        "-"
        if value is None
        or (isinstance(value, float) and pd.isna(value))
        or not isinstance(value, str)
        else value
    )


def http_bytes(http: pd.DataFrame) -> pd.DataFrame:
    """Summed response body bytes by host, responder address, MIME type and URI (largest first)."""
    frame = http.assign(
        mime_type=http["resp_mime_types"].map(_first_mime) if "resp_mime_types" in http else "-",
        host=http["host"].astype("string").fillna("-"),
        uri=http["uri"].astype("string").fillna("-"),
    )
    grouped = frame.groupby(["host", "id.resp_h", "mime_type", "uri"], observed=True, dropna=False)[
        "response_body_len"
    ].sum()
    return grouped.sort_values(ascending=False).to_frame("response_body_len")


def http_bytes_by_host_and_mime(http: pd.DataFrame) -> pd.DataFrame:
    """Host x MIME type table of response bytes: the data of the seed's stacked bar plot."""
    table = (
        http_bytes(http)
        .groupby(level=["host", "mime_type"], observed=True)["response_body_len"]
        .sum()
        .unstack("mime_type")
    )
    return table.fillna(0).astype("int64")


def plot_http_bytes(http: pd.DataFrame, path: Path | None = None) -> Figure:
    """Stacked bar plot of response bytes per host by MIME type; saved to ``path`` if given."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = http_bytes_by_host_and_mime(http)
    # Horizontal bars, largest host on top: host names stay readable however long they are.
    table = table.loc[table.sum(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(11, max(3.0, 0.45 * len(table) + 1.5)))
    if table.empty:
        ax.text(0.5, 0.5, "no HTTP response bodies", ha="center", va="center")
    else:
        table.plot(kind="barh", stacked=True, ax=ax, width=0.8)
        ax.set_xlabel("response bytes")
        ax.set_ylabel("host")
        ax.legend(
            title="MIME type", fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5)
        )
    ax.set_title("HTTP response bytes per host by MIME type")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


@dataclass
class Report:
    """The seed notebook's tables for one capture, ready to print or render."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_text(self, max_rows: int = 15) -> str:
        with pd.option_context(
            "display.max_rows", max_rows, "display.width", 160, "display.max_columns", 12
        ):
            return "\n\n".join(
                f"== {name} ==\n{table.head(max_rows)}" for name, table in self.tables.items()
            )

    def to_html(self, plot_png: str | None = None) -> str:
        parts = [
            f"<h2>{html.escape(name)}</h2>{table.head(50).to_html()}"
            for name, table in self.tables.items()
        ]
        if plot_png:
            parts.append(
                f'<h2>HTTP response bytes per host by MIME type</h2><img src="{html.escape(plot_png)}">'
            )
        return "<html><body>" + "".join(parts) + "</body></html>"


def build_report(frames: dict[str, pd.DataFrame]) -> Report:
    """Every seed analysis whose log the capture has."""
    tables: dict[str, pd.DataFrame] = {}
    if "dns" in frames:
        tables["dns queries"] = dns_queries(frames["dns"])
    if "conn" in frames:
        tables["conn"] = frames["conn"]
        tables["conn bytes and packets"] = conn_summary(frames["conn"])
        tables["connections not to port 80"] = non_http_port(frames["conn"])
    if "http" in frames:
        tables["http bytes by host, responder, MIME type, URI"] = http_bytes(frames["http"])
    return Report(tables)


def write_report(frames: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    """Render the report as text, HTML and the PNG plot into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(frames)
    written = {"text": out / "report.txt", "html": out / "report.html"}
    plot = None
    if "http" in frames:
        plot = out / "http_bytes.png"
        plot_http_bytes(frames["http"], plot)
        written["plot"] = plot
    written["text"].write_text(report.to_text() + "\n")
    written["html"].write_text(report.to_html(plot.name if plot else None))
    return written


def pcap_details_view(details: object) -> dict:
    """The seed's ``view_pcap_details`` shape: Zeek logs with row counts and the extracted files."""
    record = details if isinstance(details, dict) else details.__dict__
    return {
        "md5": record["md5"],
        "name": record["name"],
        "status": record["status"],
        "errors": list(record.get("errors") or []),
        "zeek_logs": {
            log: entry["records"] for log, entry in sorted(record.get("logs", {}).items())
        },
        "extracted_files": [
            {
                k: f.get(k)
                for k in (
                    "filename",
                    "md5",
                    "sha256",
                    "ssdeep",
                    "entropy",
                    "file_size",
                    "file_type",
                )
            }
            for f in record.get("files", [])
        ],
    }
