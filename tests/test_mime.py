"""Zeek-signature MIME sniffing: what wins where signatures overlap, and what is out of reach."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from wirestream.processors.engine.mime import BOF_BUFFER_SIZE, SIGNATURES, sniff_all, sniff_mime

from wirestream.demo_pcap import pdf_document, png_image


def _docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"<!DOCTYPE html>\n<html><head></head></html>", "text/html"),
        (b"\n  <html><body>x</body></html>", "text/html"),
        (b"<!-- note --><HEAD><title>t</title></HEAD>", "text/html"),
        (b'<?xml version="1.0"?>\n<data/>', "application/xml"),
        (b'<?xml version="1.0"?>\n<rss version="2.0">', "text/rss"),
        (b'{"a": [1, 2], "b": true}', "text/json"),
        (b"[1, 2, 3]", "text/json"),
        (b"  {}  ", "text/json"),
        (b"plain words, nothing special here", "text/plain"),
        (b"HTTP/1.0 400 Bad Request\r\n", "text/plain"),
        (png_image(), "image/png"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (pdf_document(), "application/pdf"),
        (gzip.compress(b"abc"), "application/x-gzip"),
        (_docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"PK\x03\x04\x0a\x00\x00\x00" + b"\x00" * 40, "application/zip"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "application/x-dosexec"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00", "application/x-executable"),
        (b"CWS\x0a\x00\x00", "application/x-shockwave-flash"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x32", "application/x-java-applet"),
        (b"#!/bin/sh\necho hi\n", "text/x-shellscript"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "application/msword"),
        (b"%!PS-Adobe-3.0", "application/postscript"),
    ],
)
def test_strongest_signature_wins(data: bytes, mime: str) -> None:
    assert sniff_mime(data) == mime


def test_plain_text_loses_to_everything_and_binary_matches_nothing() -> None:
    hits = sniff_all(b"<html><body>hello there</body></html>")
    assert [h.mime for h in hits][0] == "text/html" and hits[-1].mime == "text/plain"
    assert sniff_mime(b"\x00\x01\x02\x03\x04") is None
    assert sniff_mime(b"short") is None  # fewer than 10 printable bytes is not plain text
    assert sniff_mime(b"") is None


def test_only_the_bof_buffer_is_looked_at() -> None:
    late = b"\x00" * BOF_BUFFER_SIZE + b"<?php echo 1; ?>"
    assert sniff_mime(late) is None
    early = b"x" * 100 + b"<?php echo 1; ?>"
    assert sniff_mime(early) == "text/x-php"


def test_signature_table_is_well_formed() -> None:
    names = [s.name for s in SIGNATURES]
    assert len(names) == len(set(names))
    assert all("/" in s.mime for s in SIGNATURES)
