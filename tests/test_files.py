"""The file manager: fuids, sniffing, hashes, extraction and the files.log record."""

from __future__ import annotations

import hashlib

import pytest
from wirestream.processors.engine.api import ConnId, ExtractedFile
from wirestream.processors.engine.files import FileManager, FilesConfig, extraction_name
from wirestream.processors.engine.mime import BOF_BUFFER_SIZE
from wirestream.processors.engine.uid import UidGenerator

CONN = ConnId("10.1.2.3", 50000, "203.0.113.9", 80, "tcp")
PUBLIC = ConnId("198.18.0.1", 50000, "8.8.8.8", 80, "tcp")


def manager(config: FilesConfig | None = None) -> tuple[FileManager, list, list[ExtractedFile]]:
    logs: list = []
    extracted: list[ExtractedFile] = []
    sink = extracted.append if config is not None and config.extract else None
    return (
        FileManager(
            lambda log, rec: logs.append((log, rec)), sink, config=config, uids=UidGenerator(1)
        ),
        logs,
        extracted,
    )


def test_record_columns_and_hashes() -> None:
    fm, logs, _ = manager(FilesConfig(hashes=("MD5", "SHA1", "SHA256")))
    data = b"%PDF-1.4\n" + b"x" * 5000
    f = fm.new_file(
        source="HTTP", ts=100.0, is_orig=False, uid="Cabc", conn_id=CONN, filename="doc.pdf"
    )
    assert f.fuid.startswith("F") and len(f.fuid) > 10
    f.set_total(len(data))
    f.data(data[:3000], 100.5)
    f.data(data[3000:], 101.25)
    rec = f.end(101.3)
    assert logs == [("files", rec)]
    assert rec["ts"] == 100.0 and rec["duration"] == pytest.approx(1.25) and rec["uid"] == "Cabc"
    assert (rec["id.orig_h"], rec["id.resp_p"], rec["source"], rec["depth"]) == (
        "10.1.2.3",
        80,
        "HTTP",
        0,
    )
    assert rec["mime_type"] == "application/pdf" and rec["filename"] == "doc.pdf"
    assert rec["seen_bytes"] == rec["total_bytes"] == len(data) and rec["missing_bytes"] == 0
    assert (
        rec["md5"] == hashlib.md5(data).hexdigest()
        and rec["sha1"] == hashlib.sha1(data).hexdigest()
    )
    assert rec["sha256"] == hashlib.sha256(data).hexdigest() and rec["analyzers"] == [
        "MD5",
        "SHA1",
        "SHA256",
    ]
    assert (
        rec["local_orig"] is True
    )  # the sender 203.0.113.9: documentation space, local by default
    assert (rec["is_orig"], rec["overflow_bytes"], rec["timedout"], rec["parent_fuid"]) == (
        False,
        0,
        False,
        None,
    )


def test_local_orig_follows_the_sender() -> None:
    fm, _, _ = manager()
    sent_by_client = fm.new_file(source="HTTP", ts=1.0, is_orig=True, conn_id=CONN).end()
    sent_by_server = fm.new_file(source="HTTP", ts=1.0, is_orig=False, conn_id=PUBLIC).end()
    assert sent_by_client["local_orig"] is True and sent_by_server["local_orig"] is False


def test_default_config_is_plain_zeek_no_hashes_no_extraction() -> None:
    fm, _, _ = manager()
    f = fm.new_file(source="HTTP", ts=1.0)
    f.data(b"hello world, some text", 1.0)
    rec = f.end()
    assert rec["analyzers"] == [] and rec["md5"] is None and "extracted" not in rec
    assert rec["mime_type"] == "text/plain"


def test_sniff_happens_once_when_bof_fills_or_file_ends() -> None:
    fm, _, _ = manager()
    seen: list = []
    f = fm.new_file(source="HTTP", ts=1.0, on_sniff=lambda h, m: seen.append(m))
    f.data(b"\x89PNG\r\n\x1a\n" + b"\0" * (BOF_BUFFER_SIZE - 100), 1.0)
    assert seen == []
    f.data(b"\0" * 200, 1.1)
    assert seen == ["image/png"]
    f.data(b"<html>" * 10, 1.2)
    f.end()
    assert seen == ["image/png"]
    g = fm.new_file(source="HTTP", ts=1.0, on_sniff=lambda h, m: seen.append(m))
    g.data(b"\x01\x02\x03", 1.0)
    g.end()
    assert seen[-1] is None  # nothing matched: the protocol records no MIME type


def test_gaps_count_missing_bytes_and_void_hashes() -> None:
    fm, _, _ = manager(FilesConfig(hashes=("SHA256",)))
    f = fm.new_file(source="HTTP", ts=1.0)
    f.data(b"<html><body>", 1.0)
    f.gap(100, 1.1)
    f.data(b"</body></html>", 1.2)
    rec = f.end()
    assert rec["missing_bytes"] == 100 and rec["seen_bytes"] == 26 and rec["sha256"] is None
    assert rec["mime_type"] == "text/html"  # sniffed from what came before the hole


def test_out_of_order_pieces_are_reassembled() -> None:
    fm, _, _ = manager(FilesConfig(hashes=("MD5",)))
    data = b"<!DOCTYPE html><html>" + b"x" * 100
    f = fm.new_file(source="HTTP", ts=1.0)
    f.data(data[60:], 1.0, offset=60)
    f.data(data[20:70], 1.1, offset=20)  # overlaps what is waiting
    assert f.seen_bytes == 0
    f.data(data[:20], 1.2, offset=0)
    rec = f.end()
    assert (rec["seen_bytes"], rec["missing_bytes"], rec["mime_type"]) == (
        len(data),
        0,
        "text/html",
    )
    assert rec["md5"] == hashlib.md5(data).hexdigest()


def test_data_at_an_offset_beyond_the_start_cannot_be_sniffed() -> None:
    fm, _, _ = manager()
    f = fm.new_file(source="HTTP", ts=1.0)
    f.data(b"%PDF-1.4 but not at the start", 1.0, offset=5000)
    rec = f.end()
    assert rec["missing_bytes"] == 5000 and rec["mime_type"] is None


def test_extraction_is_bounded_and_named_safely() -> None:
    fm, logs, extracted = manager(FilesConfig(extract=True, extract_limit=10))
    f = fm.new_file(source="HTTP", ts=1.0, filename="../../etc/passwd", conn_id=CONN, is_orig=True)
    f.data(b"0123456789ABCDEF", 2.5)
    rec = f.end()
    (x,) = extracted
    assert (
        x.data == b"0123456789"
        and x.truncated
        and x.fuid == f.fuid
        and x.filename == "../../etc/passwd"
    )
    assert (
        rec["extracted"]
        == f"extract-1.000000-HTTP-{f.fuid}"
        == extraction_name(f)
        == x.meta["extracted"]
    )
    assert (
        "/" not in rec["extracted"]
        and rec["extracted_cutoff"] is True
        and rec["extracted_size"] == 10
    )
    assert rec["analyzers"] == ["EXTRACT"]


def test_protocol_given_mime_type_and_extra_analyzers() -> None:
    fm, logs, _ = manager()
    cert = fm.new_file(
        source="SSL",
        ts=1.0,
        is_orig=False,
        mime_type="application/x-x509-user-cert",
        analyzers=("MD5", "SHA1", "SHA256", "X509"),
    )
    cert.data(b"\x30\x82\x01\x00" + b"\x00" * 256, 1.0)
    rec = cert.end()
    assert rec["mime_type"] == "application/x-x509-user-cert"
    assert rec["analyzers"] == ["MD5", "SHA1", "SHA256", "X509"] and rec["md5"] is not None
    unlogged = fm.new_file(source="SSL", ts=2.0, mime_type="application/x-x509-ca-cert", log=False)
    unlogged.data(b"\x30\x82", 2.0)
    assert unlogged.end()["mime_type"] == "application/x-x509-ca-cert"
    assert [r["ts"] for _, r in logs] == [1.0]  # only the logged certificate reached files.log


def test_finish_closes_open_files_and_double_end_is_an_error() -> None:
    fm, logs, _ = manager()
    f = fm.new_file(source="HTTP", ts=1.0)
    f.data(b"abc", 3.0)
    fm.finish()
    assert [log for log, _ in logs] == ["files"] and logs[0][1]["duration"] == 2.0
    with pytest.raises(RuntimeError):
        f.end()


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown hash"):
        FilesConfig(hashes=("CRC32",))
    with pytest.raises(ValueError, match="extract_limit"):
        FilesConfig(extract_limit=-1)
    with pytest.raises(ValueError, match="no sink"):
        FileManager(lambda log, rec: None, None, config=FilesConfig(extract=True))


@pytest.mark.timeout(300)
def test_files_log_of_http_get_matches_zeek_reference(shared, tmp_path) -> None:
    """Zeek's file-analysis logging case (http/get.pcap) with hashes and extraction turned on.

    The test script there also attaches a DATA_EVENT analyzer and names the extracted file
    itself; those two columns are test scaffolding, every other column must match.
    """
    from analyzer_ctx import compare_case

    case = "scripts.base.frameworks.file-analysis.logging"
    result = compare_case(
        shared, case, {"files"}, tmp_path, "--hash", "MD5,SHA1,SHA256", "--extract"
    )["files.log"]
    assert result["base_rows"] == result["paired"] == 1
    assert set(result["wrong"]) == {"analyzers", "extracted"}, result
    assert result["field_eq"] == result["field_total"] - 2


def test_idle_files_time_out_and_files_open_at_the_end_are_timed_out() -> None:
    fm, logs, _ = manager()
    idle = fm.new_file(source="HTTP", ts=10.0)
    idle.data(b"first part of a stalled download", 10.0)
    busy = fm.new_file(source="HTTP", ts=100.0)
    busy.data(b"x", 129.9)
    assert logs == []
    busy.data(b"y", 131.0)  # over 120 s after the stalled file's last byte (checked once a second)
    assert [(r["fuid"], r["timedout"], r["duration"]) for _, r in logs] == [(idle.fuid, True, 0.0)]
    idle.data(b"more", 132.0)  # too late: the file is gone
    fm.finish()
    assert logs[-1][1]["fuid"] == busy.fuid and logs[-1][1]["timedout"] is True
    assert logs[0][1]["seen_bytes"] == len(b"first part of a stalled download")
