"""SMB analyzer: NetBIOS framing and resync, SMB2 parsing as Zeek's binpac parser does it, what
smb_mapping.log / smb_files.log get when, and SMB file transfers in files.log, on hand-built
SMB2 messages and on Zeek's own smb2 reference case."""

from __future__ import annotations

import struct

import pytest
from analyzer_ctx import FakeContext, tcp_conn
from engine_kit import ListSink, TcpTalk
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import gssapi, smb, smb2
from wirestream.processors.engine.protocols import smb1 as smb1_mod

# ----------------------------------------------------------------------------- message builders

NEGOTIATE, TREE_CONNECT, CREATE, CLOSE, READ, WRITE, SET_INFO = 0, 3, 5, 6, 8, 9, 17
FT_MODIFIED = 129676762954270355  # FILETIMEs from Zeek's smb2 trace
FT_CREATED = 129668175639452974


def utf16(s: str) -> bytes:
    return s.encode("utf-16-le")


def header(
    command: int, mid: int, *, tid: int = 0, status: int = 0, next_command: int = 0
) -> bytes:
    return b"\xfeSMB" + struct.pack(
        "<HHIHHIIQIIQ16s", 64, 0, status, command, 1, 0, next_command, mid, 0, tid, 7, b"\0" * 16
    )


def nbss(*pdus: bytes, message_type: int = 0) -> bytes:
    body = b"".join(pdus)
    return bytes([message_type]) + len(body).to_bytes(3, "big") + body


def tree_connect_request(mid: int, path: str) -> bytes:
    name = utf16(path)
    return header(TREE_CONNECT, mid) + struct.pack("<HHHH", 9, 0, 72, len(name)) + name


def tree_connect_response(mid: int, tid: int, share_type: int, status: int = 0) -> bytes:
    if status:
        return header(TREE_CONNECT, mid, tid=tid, status=status) + struct.pack("<HHI", 9, 0, 0)
    return header(TREE_CONNECT, mid, tid=tid) + struct.pack("<HBBIII", 16, share_type, 0, 0, 0, 0)


def create_request(mid: int, tid: int, name: str, options: int = 0, **kw: int) -> bytes:
    n = utf16(name)
    body = struct.pack(
        "<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x80, 0, 7, 1, options, 120, len(n), 0, 0
    )
    return header(CREATE, mid, tid=tid, **kw) + body + n


def create_response(mid: int, tid: int, fid: tuple[int, int], size: int, **kw: int) -> bytes:
    modified = kw.pop("modified", FT_MODIFIED)
    accessed = kw.pop("accessed", FT_MODIFIED)
    body = struct.pack(
        "<HBBIQQQQQQIIQQII",
        89, 0, 0, 1, FT_CREATED, accessed, modified, modified, size, size, 0x20, 0, *fid, 0, 0,
    )  # fmt: skip
    return header(CREATE, mid, tid=tid, **kw) + body


def read_request(mid: int, tid: int, fid: tuple[int, int], offset: int, length: int) -> bytes:
    body = struct.pack("<HBBIQQQIIIHH", 49, 0x50, 0, length, offset, *fid, 0, 0, 0, 0, 0)
    return header(READ, mid, tid=tid) + body + b"\0"


def read_response(mid: int, tid: int, data: bytes) -> bytes:
    return header(READ, mid, tid=tid) + struct.pack("<HBBIII", 17, 80, 0, len(data), 0, 0) + data


def write_request(mid: int, tid: int, fid: tuple[int, int], offset: int, data: bytes) -> bytes:
    body = struct.pack("<HHIQQQIIHHI", 49, 112, len(data), offset, *fid, 0, 0, 0, 0, 0)
    return header(WRITE, mid, tid=tid) + body + data


def close_request(mid: int, tid: int, fid: tuple[int, int], next_command: int = 0) -> bytes:
    return header(CLOSE, mid, tid=tid, next_command=next_command) + struct.pack(
        "<HHIQQ", 24, 0, 0, *fid
    )


def negotiate_request(mid: int = 0) -> bytes:
    return (
        header(NEGOTIATE, mid)
        + struct.pack("<HHHHI16sQ", 36, 1, 1, 0, 0, b"\0" * 16, 0)
        + (b"\x02\x02")
    )


def session_setup_request(mid: int, blob: bytes) -> bytes:
    return header(1, mid) + struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 88, len(blob), 0) + blob


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + content


SPNEGO_OID = bytes.fromhex("2b0601050502")
NEG_TOKEN_INIT = tlv(
    0x60, tlv(0x06, SPNEGO_OID) + tlv(0xA0, tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x06, b"\x2a")))))
)
NEG_TOKEN_RESP = tlv(
    0xA1, tlv(0x30, tlv(0xA0, tlv(0x0A, b"\x01")) + tlv(0xA2, tlv(0x04, b"NTLMSSP\0" + b"x" * 200)))
)

FID = (0x45, 0xFFFFFFFFFFFFFFFF)  # persistent, volatile (their sum wraps in the scripts)


# ----------------------------------------------------------------------------- pure helpers


def test_filetime_and_utf16_conversions_follow_zeek() -> None:
    assert smb2.filetime_to_time(FT_CREATED) == pytest.approx(1322343963.945297, abs=1e-6)
    assert smb2.filetime_to_time(0) == -11644473600.0
    assert smb2.utf16_text(utf16("WP_SMBPlugin.pdf")) == b"WP_SMBPlugin.pdf"
    assert smb2.utf16_text(utf16("caf\u00e9")) == "caf\u00e9".encode()
    assert smb2.utf16_text(utf16("ab") + b"\0\0" + utf16("cd")) == b"ab"  # cut at the NUL
    assert smb2.utf16_text(utf16("a") + b"b") == b"ab"  # an odd byte is padded with a zero
    assert smb2.utf16_text(utf16("a") + b"\x00\xd8") == utf16("a") + b"\x00\xd8"  # failed: raw
    assert smb2.file_id(*FID) == 0x44  # 64-bit wrap as Zeek's count arithmetic


def test_gssapi_tokens_parse_as_zeeks_grammar_reads_them() -> None:
    assert gssapi.gssapi_token_parses(NEG_TOKEN_INIT)
    assert gssapi.gssapi_token_parses(NEG_TOKEN_RESP)  # long-form length inside
    assert gssapi.gssapi_token_parses(b"\x04\x04" + b"\xff" * 20)  # MIC token: rest of data
    assert not gssapi.gssapi_token_parses(NEG_TOKEN_RESP[:-3])  # an argument past the end
    assert not gssapi.gssapi_token_parses(tlv(0xA1, tlv(0x30, tlv(0xA5, b"\x05\x00"))))  # no [5]
    krb = tlv(0xA1, tlv(0x30, tlv(0xA2, tlv(0x04, tlv(0x60, tlv(0x06, b"\x2a"))))))
    assert not gssapi.gssapi_token_parses(krb)  # a Kerberos blob without its token id
    krb_ok = tlv(0xA1, tlv(0x30, tlv(0xA2, tlv(0x04, tlv(0x60, tlv(0x06, b"\x2a") + b"\x01\x00")))))
    assert gssapi.gssapi_token_parses(krb_ok)


def test_header_checks_and_dpd_signature() -> None:
    pdu = nbss(negotiate_request())
    assert smb.has_smb_header(pdu) and smb.sniff_smb(pdu, b"")
    assert smb.sniff_smb(b"", b"\x00\x00\x00\x10\xffSMB")
    assert not smb.has_smb_header(b"\x00\x00\x00\x10\xfdSMB")  # transform: not a resync point
    assert not smb.sniff_smb(b"GET / HTTP/1.1\r\n", b"")


def test_error_responses_as_zeek_decides_them() -> None:
    def hdr(command: int, status: int) -> smb2.Smb2Header:
        return smb2.Smb2Header(64, 0, status, command, 0, 0, 0, 1, 0, 0, 0)

    assert not smb2.is_error_response(hdr(READ, 0))
    assert smb2.is_error_response(hdr(CREATE, 0xC0000034))
    assert not smb2.is_error_response(hdr(READ, smb2.STATUS_BUFFER_OVERFLOW))
    assert smb2.is_error_response(hdr(CREATE, smb2.STATUS_BUFFER_OVERFLOW))
    assert not smb2.is_error_response(hdr(1, smb2.STATUS_MORE_PROCESSING_REQUIRED))
    assert smb2.is_error_response(hdr(READ, smb2.STATUS_PENDING))


# ----------------------------------------------------------------------------- analyzer on a context


def feed(a: smb.SmbAnalyzer, is_orig: bool, data: bytes, ts: float = 1.0) -> None:
    a.data(is_orig, data, ts)


def session(ctx: FakeContext) -> smb.SmbAnalyzer:
    """Negotiate, then map \\\\srv\\share (tid 5, DISK)."""
    a = smb.SmbAnalyzer(ctx)
    feed(a, True, nbss(negotiate_request()))
    feed(a, True, nbss(tree_connect_request(1, "\\\\srv\\share")), 2.0)
    feed(a, False, nbss(tree_connect_response(1, 5, 1)), 2.5)
    return a


def test_tree_connect_reply_writes_the_mapping_with_the_request_time() -> None:
    ctx = FakeContext(tcp_conn(445))
    session(ctx)
    (m,) = ctx.logs("smb_mapping")
    assert m["path"] == "\\\\srv\\share" and m["share_type"] == "DISK"
    assert m["ts"] == 2.0 and m["service"] is None and m["native_file_system"] is None
    assert ctx.confirmed == ["smb"]  # three deliveries without a parse error


def test_security_blobs_confirm_gssapi_before_smb_confirms() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    feed(a, True, nbss(session_setup_request(1, NEG_TOKEN_INIT)))
    assert ctx.confirmed == ["gssapi"]
    feed(a, True, nbss(session_setup_request(2, b"NTLMSSP\0\1\0\0\0")))  # raw NTLM: no GSSAPI
    feed(a, True, nbss(session_setup_request(3, b"\xa1\x05\x30\x03\xa7\x01\x00")))  # fails
    assert ctx.confirmed == ["gssapi", "smb"] and ctx.violations == []


def test_failed_tree_connect_is_not_mapped() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    feed(a, True, nbss(tree_connect_request(1, "\\\\srv\\nope")))
    feed(a, False, nbss(tree_connect_response(1, 0, 0, status=0xC00000CC)))
    assert ctx.logs("smb_mapping") == [] and ctx.violations == []


def test_create_logs_file_open_once_per_identity_and_read_becomes_a_file() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = session(ctx)
    content = b"%PDF-1.4\n" + b"x" * 100
    feed(a, True, nbss(create_request(2, 5, "dir\\report.pdf")), 3.0)
    feed(a, False, nbss(create_response(2, 5, FID, len(content))), 3.1)
    (row,) = ctx.logs("smb_files")
    assert row["action"] == "SMB::FILE_OPEN" and row["name"] == "dir\\report.pdf"
    assert row["path"] == "\\\\srv\\share" and row["size"] == len(content) and row["ts"] == 3.0
    assert row["times.created"] == pytest.approx(1322343963.945297, abs=1e-6)
    assert row["times.modified"] == pytest.approx(1323202695.427034, abs=1e-6)
    # Read in two pieces: the announced size ends the file at the last byte (File::IsComplete).
    feed(a, True, nbss(read_request(3, 5, FID, 0, 50)), 4.0)
    feed(a, False, nbss(read_response(3, 5, content[:50])), 4.1)
    feed(a, True, nbss(read_request(4, 5, FID, 50, 100)), 4.2)
    assert ctx.logs("files") == []
    feed(a, False, nbss(read_response(4, 5, content[50:])), 4.3)
    (f,) = ctx.logs("files")
    assert f["source"] == "SMB" and f["is_orig"] is False and f["filename"] == "dir\\report.pdf"
    assert f["seen_bytes"] == f["total_bytes"] == len(content) and f["missing_bytes"] == 0
    assert f["mime_type"] == "application/pdf" and f["duration"] == pytest.approx(0.2)
    # Opening it again with only a new access time is the same file: not logged again.
    feed(a, True, nbss(create_request(5, 5, "dir\\report.pdf")), 5.0)
    feed(a, False, nbss(create_response(5, 5, (0x46, 1), len(content), accessed=1)), 5.1)
    assert len(ctx.logs("smb_files")) == 1
    # A changed modification time is a new identity.
    feed(a, True, nbss(create_request(6, 5, "dir\\report.pdf")), 6.0)
    feed(a, False, nbss(create_response(6, 5, (0x47, 1), 9, modified=FT_MODIFIED + 10)), 6.1)
    assert len(ctx.logs("smb_files")) == 2


def test_a_file_read_whole_in_one_reply_ends_at_once() -> None:
    """file_over_new_connection runs before the first chunk, so its size is known for it."""
    ctx = FakeContext(tcp_conn(445))
    a = session(ctx)
    feed(a, True, nbss(create_request(2, 5, "small.txt")), 3.0)
    feed(a, False, nbss(create_response(2, 5, FID, 5)), 3.1)
    feed(a, True, nbss(read_request(3, 5, FID, 0, 5)), 3.2)
    feed(a, False, nbss(read_response(3, 5, b"hello")), 3.3)
    (f,) = ctx.logs("files")
    assert f["timedout"] is False and f["seen_bytes"] == f["total_bytes"] == 5


def test_write_then_close_ends_the_file_with_the_create_name() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = session(ctx)
    feed(a, True, nbss(create_request(2, 5, "new.txt")), 3.0)
    feed(a, False, nbss(create_response(2, 5, FID, 0)), 3.1)
    feed(a, True, nbss(write_request(3, 5, FID, 0, b"hello ")), 3.2)
    feed(a, True, nbss(write_request(4, 5, FID, 6, b"world\n")), 3.3)
    assert ctx.logs("files") == []
    feed(a, True, nbss(close_request(5, 5, FID)), 3.4)
    (f,) = ctx.logs("files")
    assert f["is_orig"] is True and f["seen_bytes"] == 12 and f["total_bytes"] is None
    assert f["filename"] == "new.txt" and f["ts"] == 3.2 and f["duration"] == pytest.approx(0.1)
    assert [r["name"] for r in ctx.logs("smb_files")] == ["new.txt"]  # only the open is logged


def test_compound_create_and_close_in_one_frame() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = session(ctx)
    create = create_request(2, 5, "a.txt")
    create += b"\0" * (-len(create) % 8)
    feed(
        a,
        True,
        nbss(create[:20] + struct.pack("<I", len(create)) + create[24:], close_request(3, 5, FID)),
    )
    feed(a, False, nbss(create_response(2, 5, FID, 3)))
    assert a.script.state is not None and 3 in a.script.state.pending_cmds  # the close was parsed
    assert ctx.violations == []


def test_negative_chain_padding_is_a_violation_and_resyncs() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    bad = header(CLOSE, 1, next_command=10) + struct.pack("<HHIQQ", 24, 0, 0, *FID)
    feed(a, True, nbss(bad))
    assert ctx.violations and ctx.violations[0].startswith("Binpac exception")
    assert a.need_sync
    # Until a delivery starts with an SMB header, nothing is parsed.
    feed(a, True, b"junk that is not SMB")
    assert a.buffers[True] == bytearray()


def test_gap_drops_data_until_a_delivery_starts_with_an_smb_header() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = session(ctx)
    msg = nbss(tree_connect_request(7, "\\\\srv\\other"))
    feed(a, True, msg[:10])  # the start of a frame, then a gap
    a.gap(True, 100, 3.0)
    feed(a, True, msg[10:])  # the rest: no header at its start, dropped
    feed(a, False, nbss(tree_connect_response(7, 6, 1)))  # starts with a header: parsed
    assert [m["path"] for m in ctx.logs("smb_mapping")] == ["\\\\srv\\share", None]
    # binpac's half-parsed unit of the cut frame fails on the next orig delivery (Zeek's
    # smb3-multichannel trace loses a create that way); the one after it parses again.
    feed(a, True, nbss(tree_connect_request(8, "\\\\srv\\lost")))
    assert len(ctx.violations) == 1 and a.need_sync
    feed(a, True, nbss(tree_connect_request(9, "\\\\srv\\third")))
    feed(a, False, nbss(tree_connect_response(9, 7, 1)))
    assert ctx.logs("smb_mapping")[-1]["path"] == "\\\\srv\\third"


def test_pipe_trees_get_no_files_and_unlogged_actions() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    feed(a, True, nbss(tree_connect_request(1, "\\\\srv\\IPC$")))
    feed(a, False, nbss(tree_connect_response(1, 9, 2)))
    feed(a, True, nbss(create_request(2, 9, "srvsvc")))
    feed(a, False, nbss(create_response(2, 9, FID, 0, modified=0)))
    feed(a, True, nbss(write_request(3, 9, FID, 0, b"\x05\x00\x0b\x03")))
    feed(a, True, nbss(close_request(4, 9, FID)))
    assert [m["share_type"] for m in ctx.logs("smb_mapping")] == ["PIPE"]
    assert ctx.logs("smb_files") == [] and ctx.logs("files") == []


def test_non_session_frames_are_skipped_and_frames_may_span_deliveries() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    keepalive = b"\x85\x00\x00\x00"
    msg = nbss(tree_connect_request(1, "\\\\srv\\share"))
    feed(a, True, msg[:30])
    feed(a, True, msg[30:] + keepalive)
    feed(a, False, nbss(tree_connect_response(1, 5, 3)))
    (m,) = ctx.logs("smb_mapping")
    assert m["share_type"] == "PRINT" and m["path"] == "\\\\srv\\share"


# ----------------------------------------------------------------------------- through the engine


def test_engine_attaches_smb_on_445_and_by_signature_elsewhere() -> None:
    for port in (445, 8445):
        sink = ListSink()
        engine = Engine(sink)
        talk = TcpTalk(engine, ("10.0.0.1", 40000), ("10.0.0.2", port))
        talk.handshake()
        talk.send(True, "PA", nbss(negotiate_request()))
        talk.send(True, "PA", nbss(tree_connect_request(1, "\\\\srv\\share")))
        talk.send(False, "PA", nbss(tree_connect_response(1, 5, 1)))
        engine.finish()
        conn = sink.rows("conn")[0]
        assert conn["service"] == "smb", port
        assert [m["path"] for m in sink.rows("smb_mapping")] == ["\\\\srv\\share"]


@pytest.mark.timeout(300)
def test_smb2_reference_case_is_exact(shared, tmp_path) -> None:
    from analyzer_ctx import compare_case

    case = "scripts.base.protocols.smb.smb2"
    result = compare_case(shared, case, {"smb_files", "smb_mapping", "files"}, tmp_path)
    assert set(result) == {"smb_files.log", "smb_mapping.log", "files.log"}
    for log, score in result.items():
        assert score["exact"] == score["base_rows"], (log, score)


# ----------------------------------------------------------------------------- site options


def test_logged_file_actions_redef_logs_reads() -> None:
    """SMB::logged_file_actions += { SMB::FILE_READ }: the read request's row, then the one
    file_over_new_connection writes with the new fuid (Zeek's smb2-read-write baseline)."""
    ctx = FakeContext(tcp_conn(445))
    ctx.shared_state = {
        smb.CONFIG_KEY: smb.SmbConfig(logged_file_actions=smb.LOGGED_FILE_ACTIONS | {"FILE_READ"})
    }
    a = session(ctx)
    feed(a, True, nbss(create_request(2, 5, "r.txt")), 3.0)
    feed(a, False, nbss(create_response(2, 5, FID, 4)), 3.1)
    feed(a, True, nbss(read_request(3, 5, FID, 0, 4)), 3.2)
    feed(a, False, nbss(read_response(3, 5, b"data")), 3.3)
    rows = ctx.logs("smb_files")
    assert [r["action"] for r in rows] == ["SMB::FILE_OPEN", "SMB::FILE_READ", "SMB::FILE_READ"]
    (f,) = ctx.logs("files")
    assert rows[1]["fuid"] is None and rows[2]["fuid"] == f["fuid"]


def test_max_pending_messages_discards_parser_and_script_state() -> None:
    ctx = FakeContext(tcp_conn(445))
    ctx.shared_state = {smb.CONFIG_KEY: smb.SmbConfig(max_pending_messages=3)}
    a = smb.SmbAnalyzer(ctx)
    for mid in range(1, 5):  # requests never answered
        feed(a, True, nbss(tree_connect_request(mid, "\\\\srv\\x")))
    assert ctx.weirds == [
        ("SMB_discarded_messages_state", "state=tree fid_map=0 tid_map=0 pending_cmds=3 pipe_map=0")
    ]
    assert a.script.state is not None and list(a.script.state.pending_cmds) == [4]


def test_config_rejects_unknown_actions() -> None:
    with pytest.raises(ValueError, match="FILE_EXPLODE"):
        smb.SmbConfig(logged_file_actions=frozenset({"FILE_EXPLODE"}))
    with pytest.raises(ValueError):
        smb.SmbConfig(max_pending_messages=-1)


def test_mutated_messages_only_ever_raise_parse_errors_inside() -> None:
    """Random byte flips and cuts in a whole conversation: the analyzer reports violations but
    never lets another exception out (which would detach it in the engine)."""
    import random

    frames = [
        (True, nbss(negotiate_request())),
        (True, nbss(session_setup_request(1, NEG_TOKEN_INIT))),
        (True, nbss(tree_connect_request(2, "\\\\srv\\share"))),
        (False, nbss(tree_connect_response(2, 5, 1))),
        (True, nbss(create_request(3, 5, "a.txt"))),
        (False, nbss(create_response(3, 5, FID, 10))),
        (True, nbss(read_request(4, 5, FID, 0, 10))),
        (False, nbss(read_response(4, 5, b"0123456789"))),
        (True, nbss(write_request(5, 5, FID, 0, b"abc"))),
        (True, nbss(close_request(6, 5, FID))),
    ]
    rng = random.Random(1)
    violations = 0
    for _ in range(400):
        ctx = FakeContext(tcp_conn(445))
        a = smb.SmbAnalyzer(ctx)
        for is_orig, frame in frames:
            b = bytearray(frame)
            for _ in range(rng.randint(0, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            if rng.random() < 0.1:
                del b[rng.randrange(len(b)) :]
            a.data(is_orig, bytes(b), 1.0)
        violations += len(ctx.violations)
    assert violations > 0  # the mutations did reach the parser's error paths


# ----------------------------------------------------------------------------- SMB1

UNICODE = 0xC000  # flags2: Unicode strings, NT status codes


def smb1(command: int, mid: int, body: bytes, *, tid: int = 0, status: int = 0) -> bytes:
    return (
        b"\xffSMB"
        + struct.pack(
            "<BIBHH8sHHHHH", command, status, 0x18, UNICODE, 0, b"\0" * 8, 0, tid, 1, 100, mid
        )
        + body
    )


def andx(command: int = 0xFF, offset: int = 0) -> bytes:
    return struct.pack("<BBH", command, 0, offset)


def smb1_tree_connect_request(mid: int, path: str) -> bytes:
    data = b"\0" + utf16(path) + b"\0\0" + b"?????\0"
    return smb1(0x75, mid, bytes([4]) + andx() + struct.pack("<HHH", 0, 1, len(data)) + data)


def smb1_tree_connect_response(mid: int, tid: int, service: bytes, fs: str) -> bytes:
    pad = b"\0" * ((1 + 4 + 2 + 2 + len(service) + 1) % 2)  # Unicode aligns to the record
    data = service + b"\0" + pad + utf16(fs) + b"\0\0"
    body = bytes([3]) + andx() + struct.pack("<HH", 1, len(data)) + data
    return smb1(0x75, mid, body, tid=tid)


def smb1_create_request(mid: int, tid: int, name: str) -> bytes:
    fields = struct.pack("<BHIIIQIIIIIB", 0, 2 * len(name), 0, 0, 0x80, 0, 0x80, 7, 1, 0, 2, 0)
    data = b"\0" + utf16(name) + b"\0\0"  # one byte aligns the name to the record
    return smb1(
        0xA2, mid, bytes([24]) + andx() + fields + struct.pack("<H", len(data)) + data, tid=tid
    )


def smb1_create_response(mid: int, tid: int, fid: int, size: int) -> bytes:
    times = (FT_CREATED, FT_MODIFIED, FT_MODIFIED, FT_MODIFIED)
    fields = struct.pack("<BHI4QIQQHHB", 0, fid, 1, *times, 0x20, size, size, 0, 0, 0)
    return smb1(0xA2, mid, bytes([34]) + andx() + fields + b"\0\0", tid=tid)


def smb1_read_request(mid: int, tid: int, fid: int, offset: int, count: int) -> bytes:
    fields = struct.pack("<HIHHIH", fid, offset, count, count, 0, 0)
    return smb1(0x2E, mid, bytes([10]) + andx() + fields + b"\0\0", tid=tid)


def smb1_read_response(mid: int, tid: int, data: bytes) -> bytes:
    fields = struct.pack("<HHHHHH8s", 0, 0, 0, len(data), 60, 0, b"\0" * 8)
    body = bytes([12]) + andx() + fields + struct.pack("<H", len(data) + 1) + b"\0" + data
    return smb1(0x2E, mid, body, tid=tid)


def smb1_close_request(mid: int, tid: int, fid: int) -> bytes:
    return smb1(0x04, mid, bytes([3]) + struct.pack("<HIH", fid, 0, 0), tid=tid)


def test_smb1_tree_create_read_close_logs_and_file() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    feed(a, True, nbss(smb1_tree_connect_request(1, "\\\\SRV\\DATA")), 1.0)
    feed(a, False, nbss(smb1_tree_connect_response(1, 2048, b"A:", "NTFS")), 1.1)
    (m,) = ctx.logs("smb_mapping")
    assert (m["path"], m["service"], m["native_file_system"], m["share_type"], m["ts"]) == (
        "\\\\SRV\\DATA", "A:", "NTFS", "DISK", 1.0,
    )  # fmt: skip
    feed(a, True, nbss(smb1_create_request(2, 2048, "docs\\a.txt")), 2.0)
    feed(a, False, nbss(smb1_create_response(2, 2048, 0x4001, 5)), 2.1)
    (row,) = ctx.logs("smb_files")  # SMB1's create reply logs before any path is known
    assert (row["action"], row["name"], row["size"], row["path"]) == (
        "SMB::FILE_OPEN", "docs\\a.txt", 5, None,
    )  # fmt: skip
    feed(a, True, nbss(smb1_read_request(3, 2048, 0x4001, 0, 5)), 3.0)
    feed(a, False, nbss(smb1_read_response(3, 2048, b"hello")), 3.1)
    (f,) = ctx.logs("files")
    assert (f["filename"], f["seen_bytes"], f["total_bytes"], f["is_orig"]) == (
        "docs\\a.txt", 5, 5, False,
    )  # fmt: skip
    feed(a, True, nbss(smb1_close_request(4, 2048, 0x4001)), 4.0)
    assert len(ctx.logs("smb_files")) == 1 and ctx.violations == []
    assert ctx.confirmed == ["smb"]


def test_smb1_ipc_tree_is_a_pipe_and_pipe_names_are_heuristic_pipes() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    feed(a, True, nbss(smb1_tree_connect_request(1, "\\\\SRV\\IPC$")))
    feed(a, False, nbss(smb1_tree_connect_response(1, 7, b"IPC", "")))
    (m,) = ctx.logs("smb_mapping")
    assert m["share_type"] == "PIPE" and m["service"] == "IPC" and m["native_file_system"] is None
    assert 7 in a.smb2.tree_is_pipe
    feed(a, True, nbss(smb1_create_request(2, 9, "samr")))  # on an unseen tree: the heuristic
    assert 9 in a.smb2.tree_is_pipe


def test_smb1_andx_chain_runs_the_chained_command_first_and_checks_offsets() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    path = b"\0" + utf16("\\\\SRV\\X") + b"\0\0" + b"?????\0"
    tree = bytes([4]) + andx() + struct.pack("<HHH", 0, 1, len(path)) + path
    blob = NEG_TOKEN_INIT
    strings = utf16("OS") + b"\0\0" + utf16("LM") + b"\0\0"
    setup_len = 1 + 4 + 2 + 2 + 2 + 4 + 2 + 4 + 4 + 2 + len(blob)
    pad = (32 + setup_len) % 2  # the strings align to the record
    setup_len += pad + len(strings)
    setup = (
        bytes([12])
        + andx(0x75, 32 + setup_len)
        + struct.pack("<HHHIHII", 4356, 50, 0, 0, len(blob), 0, 0xD4)
        + struct.pack("<H", len(blob) + pad + len(strings))
        + blob
        + b"\0" * pad
        + strings
    )
    order: list[str] = []
    real_confirm = ctx.confirm
    a.script.smb1_tree_connect_request = lambda *args: order.append("tree")  # type: ignore[method-assign]
    ctx.confirm = lambda service: (order.append(service), real_confirm(service))  # type: ignore[method-assign]
    feed(a, True, nbss(smb1(0x73, 1, setup + tree)))
    assert order == ["tree", "gssapi"]  # &let fields run after the nested command
    assert ctx.violations == [] and ctx.weirds == []
    # An AndX offset that does not advance (0, as in Zeek's own trace): the chain stops, with
    # Zeek's weird; one just behind where the command ends is a negative length: an error.
    feed(a, True, nbss(smb1(0x74, 2, bytes([2]) + andx(0x74, 0) + b"\0\0")))
    assert ctx.weirds == [("smb_andx_offset_not_advancing", "")] and ctx.violations == []
    feed(a, True, nbss(smb1(0x74, 3, bytes([2]) + andx(0x74, 10) + b"\0\0")))
    assert len(ctx.violations) == 1


def test_smb1_negotiate_reply_with_extended_security_confirms_gssapi_first() -> None:
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    dialects = b"\x02PC NETWORK PROGRAM 1.0\0\x02NT LM 0.12\0"
    feed(a, True, nbss(smb1(0x72, 1, b"\0" + struct.pack("<H", len(dialects)) + dialects)))
    blob = NEG_TOKEN_INIT
    fields = struct.pack("<BHHIIII QHB", 3, 50, 1, 16644, 65536, 0, 0x8000E3FD, 0, 0, 0)
    body = bytes([17]) + struct.pack("<H", 1) + fields + struct.pack("<H", 16 + len(blob))
    feed(a, False, nbss(smb1(0x72, 1, body + b"G" * 16 + blob)))
    assert ctx.confirmed == ["gssapi"] and ctx.violations == []
    feed(a, True, nbss(smb1(0x72, 2, b"\0\x09\0\x02NT L")))  # byte_count past the message
    assert len(ctx.violations) == 1


def test_smb1_strings_without_terminator_end_with_the_data() -> None:
    """Zeek's own cifs_negotiate_lanman trace: an ASCII domain read as Unicode has no NUL unit;
    binpac's &until array ends with the message, no error (the name is the odd UTF-16)."""
    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    fields = struct.pack("<HHHHHIHHHHH", 3, 4356, 32, 1, 0, 0, 0x2833, 0x5B3A, 0x14A, 8, 0)
    data = bytes(range(1, 9)) + b"WORKGROUP\0"
    body = bytes([13]) + struct.pack("<H", 3) + fields + struct.pack("<H", len(data)) + data
    feed(a, False, nbss(smb1(0x72, 1, body)))
    assert ctx.violations == []
    r = smb1_mod._R(b"WORKGROUP\0", 0, 10, 0)
    assert r.string(True, 0) == "\u4f57\u4b52\u5247\u554f\u0050".encode() and r.pos == 10


def test_a_file_left_open_logs_the_current_file_again_when_it_times_out() -> None:
    """main.zeek's file_state_remove writes the connection's current file whatever ended the
    transfer: at the end of the trace an open write re-logs the last FILE_OPEN (without MAC
    times Zeek has nothing to de-duplicate it by)."""
    ctx = FakeContext(tcp_conn(445))
    a = session(ctx)
    feed(a, True, nbss(create_request(2, 5, "a.txt")), 3.0)
    feed(a, False, nbss(create_response(2, 5, FID, 0)), 3.1)
    feed(a, True, nbss(write_request(3, 5, FID, 0, b"partial")), 3.2)
    feed(a, True, nbss(create_request(4, 5, "b.txt")), 3.3)
    feed(a, False, nbss(create_response(4, 5, (0x46, 1), 0, modified=0)), 3.4)
    assert [r["name"] for r in ctx.logs("smb_files")] == ["a.txt", "b.txt"]
    ctx.files.finish()
    (f,) = ctx.logs("files")
    assert f["timedout"] is True and f["filename"] == "a.txt"
    assert [r["name"] for r in ctx.logs("smb_files")] == ["a.txt", "b.txt", "b.txt"]


def test_ntlm_login_inside_spnego_session_setups_writes_ntlm_log() -> None:
    from test_proto_ntlm import SERVER_PAIRS, authenticate, challenge

    def session_setup_response(mid: int, blob: bytes, status: int) -> bytes:
        body = struct.pack("<HHHH", 9, 0, 72, len(blob)) + blob
        return header(1, mid, status=status) + body

    ctx = FakeContext(tcp_conn(445))
    a = smb.SmbAnalyzer(ctx)
    negotiate = b"NTLMSSP\0" + struct.pack("<IIQQ", 1, 0x1, 0, 0)
    init = tlv(
        0x60,
        tlv(0x06, SPNEGO_OID)
        + tlv(
            0xA0,
            tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x06, b"\x2a"))) + tlv(0xA2, tlv(0x04, negotiate))),
        ),
    )
    feed(a, True, nbss(session_setup_request(1, init)), 1.0)
    assert ctx.confirmed == ["ntlm", "gssapi"]  # the NTLM token is parsed inside the GSSAPI one
    resp = tlv(
        0xA1,
        tlv(0x30, tlv(0xA0, tlv(0x0A, b"\x01")) + tlv(0xA2, tlv(0x04, challenge(SERVER_PAIRS)))),
    )
    feed(a, False, nbss(session_setup_response(1, resp, 0xC0000016)), 1.1)
    auth = tlv(0xA1, tlv(0x30, tlv(0xA2, tlv(0x04, authenticate("CONTOSO", "alice", "PC7")))))
    feed(a, True, nbss(session_setup_request(2, auth)), 1.2)
    assert ctx.logs("ntlm") == []
    done = tlv(0xA1, tlv(0x30, tlv(0xA0, tlv(0x0A, b"\x00"))))
    feed(a, False, nbss(session_setup_response(2, done, 0)), 1.3)
    (row,) = ctx.logs("ntlm")
    assert (row["username"], row["server_nb_computer_name"], row["success"]) == (
        "alice",
        "SRV01",
        True,
    )
    assert list(dict.fromkeys(ctx.confirmed)) == ["ntlm", "gssapi", "smb"]  # conn service order
    assert ctx.violations == []
