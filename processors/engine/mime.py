"""MIME type sniffing the way Zeek does it: byte signatures with strengths, not libmagic.

Zeek decides a file's ``mime_type`` by matching its first bytes (the BOF buffer, 4096 bytes by
default) against the ``file-magic`` signatures of ``base/frameworks/files/magic``; the strongest
match wins. Zeek matches a signature's pattern from the first byte of the buffer (a prefix
match), so patterns here are applied with :func:`re.match`. The table covers the formats seen
on real networks (web content, documents, archives, executables, media); each entry records the
MIME type and strength Zeek gives it, so ties and overlaps resolve as in Zeek (plain text loses to
everything, HTML beats XML, PNG beats anything starting with printable bytes, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOF_BUFFER_SIZE = 4096  # Zeek's default_file_bof_buffer_size

# Pieces of Zeek's character classes, spelled for Python bytes regexes.
_WS = rb"[\x0d\x0a \t]"  # [\x0d\x0a[:blank:]]
_BOM3 = rb"(?:\xef\xbb\xbf|\xff\xfe|\xfe\xff)?"
_COMMENTS = rb"(?:" + _WS + rb"*(?:<!--.*-->)?" + _WS + rb"*)*"
_XMLDECL = rb"(?:<\?xml .*\?>)?"
_MARKUP_PREFIX = _BOM3 + _COMMENTS + _XMLDECL + _COMMENTS


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    mime: str
    strength: int
    pattern: re.Pattern[bytes]


def _sig(name: str, mime: str, strength: int, pattern: bytes) -> Signature:
    return Signature(name, mime, strength, re.compile(pattern))


def _ci(word: str) -> bytes:
    """Case-insensitive literal, as Zeek's signatures spell it ([hH][tT]...)."""
    return b"".join(
        b"[" + c.lower().encode() + c.upper().encode() + b"]"
        if c.isalpha()
        else re.escape(c.encode())
        for c in word
    )


SIGNATURES: tuple[Signature, ...] = (
    # --- general.sig
    _sig("file-plaintext", "text/plain", -20, rb"(?:\xef\xbb\xbf|(?:\x00\x00)?\xfe\xff|\xff\xfe(?:\x00\x00)?)?[ \t\n\r\f\v\x20-\x7e]{10}"),
    _sig("file-json", "text/json", 1, _BOM3 + _WS + rb"*\{" + _WS + rb"*(?:\"[^\"]+\"|[a-zA-Z][a-zA-Z0-9\\_]*)" + _WS + rb"*:" + _WS + rb"*(?:\"|\[|\{|[0-9]|true|false)"),
    _sig("file-json2", "text/json", 1, _BOM3 + _WS + rb"*\[" + _WS + rb"*(?:(?:(?:\"[^\"]+\"|[0-9]+(?:\.[0-9]+)?|true|false)" + _WS + rb"*,)|\{|\[)" + _WS + rb"*"),
    _sig("file-json3", "text/json", 0, _BOM3 + _WS + rb"*(?:\[\]|\{\})" + _WS + rb"*\Z"),
    _sig("file-xml", "application/xml", 10, _BOM3 + rb"(?:" + _WS + rb"*(?:<!--.*-->)?" + _WS + rb"*)*\x00?<\x00?\?\x00?x\x00?m\x00?l\x00? \x00?"),
    _sig("file-xhtml", "text/html", 100, _MARKUP_PREFIX + rb"<(?:!" + _ci("doctype") + rb" +" + _ci("html") + rb"|" + _ci("html") + rb"|" + _ci("meta") + rb" +" + _ci("http-equiv") + rb")"),
    _sig("file-html", "text/html", 49, _MARKUP_PREFIX + rb"<!" + _ci("doctype") + rb" +" + _ci("html")),
    _sig("file-html2", "text/html", 20, _MARKUP_PREFIX + rb"<(?:" + _ci("head") + rb"|" + _ci("html") + rb"|" + _ci("title") + rb"|" + _ci("body") + rb")"),
    _sig("file-rss", "text/rss", 90, _MARKUP_PREFIX + rb"<" + _ci("rss")),
    _sig("file-atom", "text/atom", 100, _MARKUP_PREFIX + rb"<(?:" + _ci("rss") + rb"[^>]*xmlns:atom|" + _ci("feed") + rb"[^>]*xmlns=[\"']?http://www.w3.org/2005/Atom[\"']?)"),
    _sig("file-soap", "application/soap+xml", 49, _MARKUP_PREFIX + rb"<" + _ci("soap") + rb"(?:-" + _ci("env") + rb")?:" + _ci("envelope")),
    _sig("file-cross-domain-policy", "text/x-cross-domain-policy", 49, _COMMENTS + _XMLDECL + _COMMENTS + rb"<!" + _ci("doctype") + rb" +" + _ci("cross-domain-policy")),
    _sig("file-cross-domain-policy2", "text/x-cross-domain-policy", 49, _COMMENTS + _XMLDECL + _COMMENTS + rb"<" + _ci("cross-domain-policy")),
    _sig("file-xmlrpc", "application/xml-rpc", 49, _MARKUP_PREFIX + rb"<" + _ci("methodresponse") + rb">"),
    _sig("file-ini", "text/ini", 20, _BOM3 + rb"[\x00\x0d\x0a \t]*\[[^\x0d\x0a]+\][ \t\x00]*[\x0d\x0a]"),
    _sig("file-lnk", "application/x-ms-shortcut", 49, rb"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"),
    _sig("file-reg", "application/vnd.ms-reg", 49, rb"REGEDIT4"),
    _sig("file-regf", "application/vnd.ms-regf", 49, rb"regf"),
    _sig("file-ocsp-request", "application/ocsp-request", 71, rb"(?s:.{11,19})\x06\x05\x2b\x0e\x03\x02\x1a"),
    _sig("file-ocsp-response", "application/ocsp-response", 71, rb"(?s:.{11,19})\x06\x09\x2b\x06\x01\x05\x05\x07\x30\x01\x01"),
    _sig("file-swf", "application/x-shockwave-flash", 60, rb"[FCZ]WS"),
    _sig("file-pem", "application/x-pem", 0, rb"-----BEGIN CERTIFICATE-----"),
    # --- image.sig
    _sig("file-tiff", "image/tiff", 70, rb"(?:MM\x00[\x2a\x2b]|II[\x2a\x2b]\x00)"),
    _sig("file-gif", "image/gif", 70, rb"GIF8"),
    _sig("file-jpeg", "image/jpeg", 52, rb"\xff\xd8"),
    _sig("file-bmp", "image/x-ms-bmp", 50, rb"BM(?s:.{12})[\x0c\x28\x40\x6c\x7c\x80]\x00"),
    _sig("file-ico", "image/x-icon", 70, rb"\x00\x00\x01\x00"),
    _sig("file-cur", "image/x-cursor", 70, rb"\x00\x00\x02\x00"),
    _sig("file-psd", "image/vnd.adobe.photoshop", 70, rb"8BPS"),
    _sig("file-png", "image/png", 110, rb"\x89PNG"),
    _sig("file-webp", "image/webp", 70, rb"RIFF(?s:.{4})WEBP"),
    _sig("file-svg", "image/svg+xml", 38, rb"<\?xml version=\"[^\x00](?s:.{3}).*<svg"),
    # --- archive.sig
    _sig("file-zip", "application/zip", 10, rb"PK\x03\x04(?s:.{2})"),
    _sig("file-zip-spanned", "application/zip", 10, rb"PK\x07\x08PK\x03\x04"),
    _sig("file-rar", "application/x-rar", 70, rb"Rar!"),
    _sig("file-gzip", "application/x-gzip", 100, rb"\x1f\x8b"),
    _sig("file-cab", "application/vnd.ms-cab-compressed", 110, rb"MSCF\x00\x00\x00\x00"),
    _sig("file-7z", "application/x-7z-compressed", 50, rb"7z\xbc\xaf\x27\x1c"),
    _sig("file-xz", "application/x-xz", 90, rb"\xfd7zXZ\x00"),
    _sig("file-bzip2", "application/x-bzip2", 60, rb"BZh"),
    _sig("file-rpm", "application/x-rpm", 70, rb"(?:drpm|\xed\xab\xee\xdb)"),
    _sig("file-tar", "application/x-tar", 100, rb"[\x20-\x7e\x00]{100}(?:[0-9 ]{7}\x00){3}(?:[0-9 ]{11}\x00){2}[0-9\x00 ]{7}[ \x00][0-7\x00]"),
    # --- executable.sig
    _sig("file-mz", "application/x-dosexec", 51, rb"MZ"),
    _sig("file-elf-object", "application/x-object", 50, rb"\x7fELF[\x01\x02](?:\x01(?s:.{10})\x01\x00|\x02(?s:.{10})\x00\x01)"),
    _sig("file-elf", "application/x-executable", 50, rb"\x7fELF[\x01\x02](?:\x01(?s:.{10})\x02\x00|\x02(?s:.{10})\x00\x02)"),
    _sig("file-elf-sharedlib", "application/x-sharedlib", 50, rb"\x7fELF[\x01\x02](?:\x01(?s:.{10})\x03\x00|\x02(?s:.{10})\x00\x03)"),
    _sig("file-elf-coredump", "application/x-coredump", 50, rb"\x7fELF[\x01\x02](?:\x01(?s:.{10})\x04\x00|\x02(?s:.{10})\x00\x04)"),
    _sig("file-mach-o", "application/x-mach-o-executable", 100, rb"[\xce\xcf]\xfa\xed\xfe"),
    _sig("file-mach-o-universal", "application/x-mach-o-executable", 100, rb"\xca\xfe\xba\xbe(?s:..)\x00[\x01-\x14]"),
    # --- java.sig
    _sig("file-java-applet", "application/x-java-applet", 71, rb"\xca\xfe\xba\xbe(?s:...)[\x2d-\x34]"),
    _sig("file-jar", "application/java-archive", 100, rb"PK\x03\x04(?s:.{1,200})\x14\x00(?s:..)META-INF/MANIFEST\.MF"),
    # --- office.sig
    _sig("file-msword", "application/msword", 50, rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    _sig("file-ooxml", "application/vnd.openxmlformats-officedocument", 50, rb"PK\x03\x04\x14\x00\x06\x00"),
    _sig("file-docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 80, rb"PK\x03\x04(?s:.{26})(?:\[Content_Types\]\.xml|_rels/\.rels|word/)(?s:.*)PK\x03\x04(?s:.{26})word/"),
    _sig("file-xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 80, rb"PK\x03\x04(?s:.{26})(?:\[Content_Types\]\.xml|_rels/\.rels|xl/)(?s:.*)PK\x03\x04(?s:.{26})xl/"),
    _sig("file-pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", 80, rb"PK\x03\x04(?s:.{26})(?:\[Content_Types\]\.xml|_rels/\.rels|ppt/)(?s:.*)PK\x03\x04(?s:.{26})ppt/"),
    # --- libmagic.sig / font.sig
    _sig("file-pdf", "application/pdf", 80, rb"%PDF-"),
    _sig("file-rtf", "text/rtf", 80, rb"\{\\rtf"),
    _sig("file-postscript", "application/postscript", 50, rb"%!"),
    _sig("file-postscript-eps", "application/postscript", 60, rb"\x04%!"),
    _sig("file-woff2", "application/font-woff2", 70, rb"wOF2"),
    _sig("file-woff", "application/font-woff", 70, rb"wOFF"),
    _sig("file-ttf", "application/x-font-ttf", 80, rb"\x00\x01\x00\x00\x00"),
    _sig("file-bittorrent", "application/x-bittorrent", 140, rb"d8:announce"),
    # --- audio.sig / video.sig
    _sig("file-mp3", "audio/mpeg", 20, rb"(?:ID3|\xff[\xe2\xe3\xf2\xf3\xf6\xf7\xfa\xfb\xfc\xfd])"),
    _sig("file-m4a", "audio/m4a", 70, rb"(?s:....)ftypm4a"),
    _sig("file-wav", "audio/x-wav", 70, rb"RIFF(?s:.{4})WAVE"),
    _sig("file-ogg", "application/ogg", 70, rb"OggS"),
    _sig("file-flv", "video/x-flv", 60, rb"FLV"),
    _sig("file-mp4", "video/mp4", 70, rb"(?s:....)ftyp(?:isom|mp4[12])"),
    _sig("file-3gpp", "video/3gpp", 60, rb"(?s:....)ftyp(?:3g[egps2]|avc1|mmp4)"),
    _sig("file-quicktime", "video/quicktime", 70, rb"(?s:....)(?:mdat|moov)"),
    _sig("file-webm", "video/webm", 70, rb"\x1a\x45\xdf\xa3(?s:.*)B\x82(?s:.)webm"),
    _sig("file-matroska", "video/x-matroska", 110, rb"\x1a\x45\xdf\xa3(?s:.*)B\x82(?s:.)matroska"),
    # --- programming.sig
    _sig("file-shellscript", "text/x-shellscript", 250, rb"#![^\n]{1,15}bin/(?:env[ \t\n\r\f\v]+)?(?:ba|tc|c|z|fa|ae|k)?sh"),
    _sig("file-perl", "text/x-perl", 60, rb"#![^\n]{1,15}bin/(?:env[ \t\n\r\f\v]+)?perl"),
    _sig("file-ruby", "text/x-ruby", 60, rb"#![^\n]{1,15}bin/(?:env[ \t\n\r\f\v]+)?ruby"),
    _sig("file-python", "text/x-python", 60, rb"#![^\n]{1,15}bin/(?:env[ \t\n\r\f\v]+)?python"),
    _sig("file-php", "text/x-php", 60, rb"#![^\n]{1,15}bin/(?:env[ \t\n\r\f\v]+)?php"),
    _sig("file-php2", "text/x-php", 40, rb".*<\?php"),
    _sig("file-javascript", "application/javascript", 60, rb"[\x0d\x0a \t]*<" + _ci("script") + rb"[ \t]+(?:" + _ci("type") + rb"|" + _ci("language") + rb")=['\"]?(?:" + _ci("text") + rb"/)?" + _ci("javascript")),
    _sig("file-javascript2", "application/javascript", 60, rb"[\x0d\x0a \t]*<script>[\x0d\x0a \t]*(?:var|function) "),
)  # fmt: skip


# Strongest first; a stable sort, so equal strengths keep the table's order.
_STRONGEST_FIRST = tuple(sorted(SIGNATURES, key=lambda s: -s.strength))


def sniff_all(data: bytes) -> list[Signature]:
    """Every matching signature, strongest first (Zeek's file_magic order)."""
    bof = data[:BOF_BUFFER_SIZE]
    return [s for s in _STRONGEST_FIRST if s.pattern.match(bof)]


def sniff_mime(data: bytes) -> str | None:
    """The MIME type Zeek would give a file starting with ``data`` (None: no signature matched).

    The first match in strength order is the answer, so weaker signatures are never tried."""
    bof = data[:BOF_BUFFER_SIZE]
    for sig in _STRONGEST_FIRST:
        if sig.pattern.match(bof):
            return sig.mime
    return None
