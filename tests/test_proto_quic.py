"""QUIC analyzer: RFC 9001 / RFC 9369 test vectors for the Initial keys and header protection,
hand-protected Initial packets through the engine (quic.log, ssl.log, conn service), and
Zeek's firefox case."""

from __future__ import annotations

import logging

import pktbuild as pb
import pytest
from analyzer_ctx import compare_case
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from engine_kit import ListSink, datagram
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ssl import alpn, client_hello, ext, server_hello, sni
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols import quic
from wirestream.processors.engine.protocols.bytereader import ParseError

# -- RFC 9001 Appendix A / RFC 9369 Appendix A (published values) ----------------------------
RFC_DCID = bytes.fromhex("8394c8f03e515708")
V1_CLIENT = dict(
    secret="c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
    key="1f369613dd76d5467730efcbe3b1a22d",
    iv="fa044b2f42a3fd3b46fb255c",
    hp="9f50449e04a0e810283a1e9933adedd2",
)
V1_SERVER = dict(
    secret="3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b",
    key="cf3a5331653c364c88f0f379b6067e37",
    iv="0ac1493ca1905853b0bba03e",
    hp="c206b8d9b9f0f37644430b490eeaa314",
)
V2_CLIENT = dict(
    secret="14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
    key="8b1a0bc121284290a29e0971b5cd045d",
    iv="91f73e2351d8fa91660e909f",
    hp="45b95e15235d6f45a6b19cbcb0294ba9",
)
V2_SERVER = dict(
    secret="0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1",
    key="82db637861d55e1d011f19ea71d5d2a7",
    iv="dd13c276499c0249d3310652",
    hp="edf6d05c83121201b436e16877593c3a",
)
# A.3: the server's Initial, protected, and its plaintext frames (ACK + CRYPTO(ServerHello)).
A3_PACKET = bytes.fromhex(
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee"
)
A3_PLAINTEXT = bytes.fromhex(
    "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739"
    "88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94"
    "0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00"
    "020304"
)


@pytest.mark.parametrize(
    "version, from_client, want",
    [
        (quic.VERSION_1, True, V1_CLIENT),
        (quic.VERSION_1, False, V1_SERVER),
        (quic.VERSION_2, True, V2_CLIENT),
        (quic.VERSION_2, False, V2_SERVER),
    ],
)
def test_initial_keys_match_the_rfc_vectors(version: int, from_client: bool, want: dict) -> None:
    keys = quic.initial_keys(version, RFC_DCID, from_client)
    got = {name: getattr(keys, name).hex() for name in want}
    assert got == want


def test_initial_secret_and_salts() -> None:
    assert quic.hkdf_extract(quic.SALT_V1, RFC_DCID).hex() == (
        "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"
    )
    assert quic.initial_salt(0xFF00001D) == quic.SALT_DRAFT_29_32  # draft-29
    assert quic.initial_salt(0xFF000022) == quic.SALT_V1  # drafts 33/34 use v1's
    assert quic.initial_salt(0xFACEB002) == quic.SALT_DRAFT_23_28


@pytest.mark.parametrize(
    "hp, sample, mask",
    [
        (V1_CLIENT["hp"], "d1b1c98dd7689fb8ec11d242b123dc9b", "437b9aec36"),  # A.2
        (V1_SERVER["hp"], "2cd0991cd25b0aac406a5816b6394100", "2ec0d8356a"),  # A.3
    ],
)
def test_header_protection_mask_matches_the_rfc(hp: str, sample: str, mask: str) -> None:
    got = quic.header_protection_mask(bytes.fromhex(hp), bytes.fromhex(sample))
    assert got[:5].hex() == mask


def test_rfc_server_initial_decrypts() -> None:
    # header: c1 | 00000001 | 00 | 08 f067a5502a4262b5 | token 00 | length 4075 | pn 0001
    plain = quic.decrypt_initial(quic.VERSION_1, A3_PACKET, RFC_DCID, 18, 0x75, False)
    assert plain == A3_PLAINTEXT


def test_decryption_failures_carry_zeeks_reasons() -> None:
    damaged = A3_PACKET[:-1] + bytes([A3_PACKET[-1] ^ 1])
    with pytest.raises(quic.QuicDecryptError, match="decryption failed"):
        quic.decrypt_initial(quic.VERSION_1, damaged, RFC_DCID, 18, 0x75, False)
    with pytest.raises(quic.QuicDecryptError, match="payload too small"):
        quic.decrypt_initial(quic.VERSION_1, A3_PACKET, RFC_DCID, 18, 19, False)
    with pytest.raises(quic.QuicDecryptError, match="packet too small"):
        quic.decrypt_initial(quic.VERSION_1, A3_PACKET[:100], RFC_DCID, 18, 0x75, False)
    with pytest.raises(quic.QuicDecryptError, match="unable to decrypt"):
        quic.decrypt_initial(0x0A0A0A0A, A3_PACKET, RFC_DCID, 18, 0x75, False)


def test_version_names() -> None:
    assert quic.version_name(1) == "1"
    assert quic.version_name(quic.VERSION_2) == "quicv2"
    assert quic.version_name(0xFF00001D) == "draft-29"
    assert quic.version_name(0xFF00001F) == "draft-30"  # as Zeek's table has it
    assert quic.version_name(0xFACEB002) == "mvfst (faceb002)"
    assert quic.version_name(0x10010000) == "unknown-10010000"


# -- building protected packets (with the RFC's keys, independently of the module) -----------
def varint(n: int) -> bytes:
    for size, tag in ((1, 0), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if n < 1 << (8 * size - 2):
            return (n | tag << (8 * size - 8)).to_bytes(size, "big")
    raise ValueError(n)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def long_packet(
    keys: dict | None,
    packet_type: int,
    dcid: bytes,
    scid: bytes,
    payload: bytes,
    *,
    version: int = quic.VERSION_1,
    pn: int = 0,
    token: bytes = b"",
) -> bytes:
    """A long-header packet; with ``keys`` an Initial protected as RFC 9001 §5 says."""
    pn_len = 2
    first = 0xC0 | packet_type << 4 | (pn_len - 1)
    head = bytes([first]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid
    head += bytes([len(scid)]) + scid
    if packet_type == (1 if version == quic.VERSION_2 else 0):
        head += varint(len(token)) + token
    if keys is None:
        return head + (0x4000 | len(payload)).to_bytes(2, "big") + payload
    payload = payload.ljust(40, b"\0")  # room for the header-protection sample
    head += (0x4000 | (pn_len + len(payload) + 16)).to_bytes(2, "big")
    header = head + pn.to_bytes(pn_len, "big")
    key, iv, hp = (bytes.fromhex(keys[k]) for k in ("key", "iv", "hp"))
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    sample = sealed[4 - pn_len : 20 - pn_len]
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sample)  # noqa: S305
    out = bytearray(header)
    out[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        out[len(head) + i] ^= mask[1 + i]
    return bytes(out) + sealed


def short_packet(dcid: bytes, n: int = 30) -> bytes:
    return b"\x41" + dcid + bytes(range(n))


CLIENT, SERVER = ("10.0.0.1", 50000), ("10.0.0.2", 443)
CLIENT_SCID, SERVER_SCID = bytes.fromhex("010203"), bytes.fromhex("aa" * 8)
TLS13_CH = client_hello(sni("quic.example"), alpn("h3", "h3-29"), ext(43, b"\x02\x03\x04"))
TLS13_SH = server_hello(
    ext(43, b"\x03\x04"), ext(51, b"\x00\x1d\x00\x20" + bytes(32)), cipher=0x1301
)


class Talk:
    """A UDP conversation fed to the engine, one datagram per call."""

    def __init__(self, server: tuple[str, int] = SERVER, **engine_options) -> None:
        self.sink = ListSink()
        self.engine = Engine(self.sink, seed=1, **engine_options)
        self.server = server
        self.t = 100.0

    def send(self, from_client: bool, payload: bytes) -> None:
        (src, sport), (dst, dport) = (CLIENT, self.server) if from_client else (self.server, CLIENT)
        self.t += 0.01
        seg = pb.udp(sport, dport, payload, src=src, dst=dst)
        self.engine.ip(datagram(self.t, src, dst, 17, seg))

    def finish(self) -> ListSink:
        self.engine.finish()
        return self.sink


def client_initial(frames: bytes, pn: int = 0, dcid: bytes = RFC_DCID, **kw) -> bytes:
    return long_packet(V1_CLIENT, 0, dcid, CLIENT_SCID, frames, pn=pn, **kw)


def server_initial(frames: bytes, pn: int = 0) -> bytes:
    return long_packet(V1_SERVER, 0, CLIENT_SCID, SERVER_SCID, frames, pn=pn)


def handshake(from_client: bool) -> bytes:
    dcid, scid = (SERVER_SCID, CLIENT_SCID) if from_client else (CLIENT_SCID, SERVER_SCID)
    return long_packet(None, 2, dcid, scid, bytes(30))


def test_handshake_gives_quic_and_ssl_rows_and_both_services() -> None:
    talk = Talk()
    padding = bytes(20)  # after the Initial: fixed bit clear, discarded
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH) + bytes(900)) + padding)
    ack = b"\x02\x00\x00\x00\x00"
    talk.send(False, server_initial(ack + crypto_frame(0, TLS13_SH)) + handshake(False))
    talk.send(True, handshake(True))
    for _ in range(3):
        talk.send(True, short_packet(SERVER_SCID))
    talk.send(False, short_packet(CLIENT_SCID))
    sink = talk.finish()
    [row] = sink.rows("quic")
    [tls] = sink.rows("ssl")
    [conn] = sink.rows("conn")
    assert row["history"] == "ISXishHOOo"
    assert (row["version"], row["client_initial_dcid"]) == ("1", RFC_DCID.hex())
    assert (row["client_scid"], row["server_scid"]) == ("010203", "aa" * 8)
    assert (row["server_name"], row["client_protocol"]) == ("quic.example", "h3")
    assert row["ts"] == pytest.approx(100.01) and row["uid"] == conn["uid"] == tls["uid"]
    assert (tls["version"], tls["cipher"], tls["curve"]) == (
        "TLSv13",
        "TLS_AES_128_GCM_SHA256",
        "x25519",
    )
    assert (tls["ssl_history"], tls["established"], tls["server_name"]) == (
        "Cs",
        False,
        "quic.example",
    )
    assert conn["service"] == "quic,ssl"
    weird = [w for w in sink.rows("weird") if w["name"] == "QUIC_many_protocols"]
    assert [w["addl"] for w in weird] == ["[h3, h3-29]"]


def test_crypto_split_over_initials_out_of_order_is_reassembled() -> None:
    talk = Talk()
    cut = 100
    talk.send(True, client_initial(crypto_frame(cut, TLS13_CH[cut:]), pn=1))
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH[:cut]), pn=0))
    talk.send(True, client_initial(b"\x01", pn=2))  # finished: not decrypted any more
    sink = talk.finish()
    [row] = sink.rows("quic")
    assert row["history"] == "IISI"
    assert row["server_name"] == "quic.example"
    [tls] = sink.rows("ssl")
    assert tls["ssl_history"] == "C" and tls["version"] is None


def test_retry_writes_a_row_and_the_next_initial_uses_the_new_dcid() -> None:
    talk = Talk()
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)))
    retry = b"\xf0" + (1).to_bytes(4, "big") + b"\x03" + CLIENT_SCID + b"\x08" + SERVER_SCID
    talk.send(False, retry + b"token" + bytes(16))
    # the client's second Initial: the DCID is the server's new SCID, keys derived from it
    new_dcid = SERVER_SCID
    keys = quic.initial_keys(quic.VERSION_1, new_dcid, True)
    hexkeys = {"key": keys.key.hex(), "iv": keys.iv.hex(), "hp": keys.hp.hex()}
    talk.send(True, long_packet(hexkeys, 0, new_dcid, CLIENT_SCID, crypto_frame(0, TLS13_CH)))
    sink = talk.finish()
    first, second_row = sink.rows("quic")
    assert (first["history"], first["server_scid"]) == ("ISr", None)
    assert first["client_initial_dcid"] == RFC_DCID.hex()
    assert (second_row["history"], second_row["client_initial_dcid"]) == ("IS", new_dcid.hex())
    [tls] = sink.rows("ssl")
    assert tls["ssl_history"] == "CC"  # one c$ssl for the connection, a new SSL analyzer


def test_connection_close_in_an_initial_writes_the_row() -> None:
    talk = Talk()
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)))
    close = b"\x1c" + varint(0x0A) + b"\x00" + varint(3) + b"bye"
    talk.send(False, server_initial(close))
    talk.send(False, handshake(False))  # a new c$quic
    sink = talk.finish()
    first, second = sink.rows("quic")
    assert first["history"] == "ISic"
    assert second["history"] == "h" and second["client_initial_dcid"] is None


def test_unknown_version_is_one_row_and_a_violation() -> None:
    talk = Talk()
    talk.send(True, long_packet(None, 0, b"\x00", b"", bytes(30), version=0x10010000))
    sink = talk.finish()
    [row] = sink.rows("quic")
    assert (row["version"], row["history"]) == ("unknown-10010000", "U")
    assert (row["client_initial_dcid"], row["client_scid"]) == ("00", "")
    [conn] = sink.rows("conn")
    assert conn["service"] is None


def test_undecryptable_initial_is_a_violation_without_a_service() -> None:
    talk = Talk()
    packet = bytearray(client_initial(crypto_frame(0, TLS13_CH)))
    packet[-1] ^= 0xFF
    talk.send(True, bytes(packet))
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)))  # analyzer already removed
    sink = talk.finish()
    [row] = sink.rows("quic")
    assert row["history"] == "I"
    assert sink.rows("ssl") == []
    assert sink.rows("conn")[0]["service"] is None


def test_unhandled_frame_type_is_a_violation() -> None:
    talk = Talk()
    talk.send(True, client_initial(b"\x08\x00\x01x"))  # STREAM: not in an Initial
    sink = talk.finish()
    assert sink.rows("quic")[0]["history"] == "I"
    assert sink.rows("conn")[0]["service"] is None


def test_dpd_finds_quic_on_another_port() -> None:
    talk = Talk(server=("10.0.0.2", 4433))
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)))
    talk.send(False, server_initial(crypto_frame(0, TLS13_SH)))
    sink = talk.finish()
    assert sink.rows("quic")[0]["history"] == "ISis"
    assert sink.rows("conn")[0]["service"] == "quic,ssl"
    assert quic.sniff_quic(b"\xd3\x6b\x33\x43\xcf", b"") and not quic.sniff_quic(b"\x40", b"")


def test_bare_mode_without_the_ssl_scripts_has_no_ssl_log() -> None:
    talk = Talk(analyzers=["quic"])
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)))
    talk.send(False, server_initial(crypto_frame(0, TLS13_SH)))
    sink = talk.finish()
    [row] = sink.rows("quic")
    assert (row["history"], row["server_name"]) == ("ISis", "quic.example")
    assert sink.rows("ssl") == []


def test_short_packets_before_any_initial_are_spurious() -> None:
    talk = Talk()
    talk.send(True, short_packet(b""))
    sink = talk.finish()
    assert sink.rows("quic") == []
    names = [(w["name"], w["addl"]) for w in sink.rows("weird")]
    assert ("QUIC_spurious_short_header_packet_threshold_crossed", "1") in names


# -- the CRYPTO stream (Spicy's sink + CryptoSinkUnit) -----------------------------------------
def stream() -> tuple[quic.CryptoStream, list[bytes]]:
    out: list[bytes] = []
    return quic.CryptoStream(out.append), out


def test_stream_forwards_the_message_in_a_handshake_record() -> None:
    s, out = stream()
    msg = bytes([1, 0, 0, 3]) + b"abc"
    s.write(msg[4:], 4)
    assert out == [] and s.size == 0
    s.write(msg[:5], 0)  # overlaps byte 4: the first copy wins
    assert b"".join(out) == b"\x16\x03\x03\x00\x07" + msg
    assert s.finished and s.size == 7 and s.length == 7
    s.write(msg[:2], 0)  # old data: nothing
    with pytest.raises(ParseError, match="already completed"):
        s.write(b"x", 7)


def test_stream_rejects_oversized_messages_silently() -> None:
    s, out = stream()
    s.write(bytes([1]) + (2**14 + 300).to_bytes(3, "big") + b"z", 0)
    assert out == [] and s.failed and not s.finished and s.size == 5


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_stream_delivers_the_message_once_whatever_the_split_and_order(data: st.DataObject) -> None:
    msg = TLS13_CH
    cuts = sorted(data.draw(st.sets(st.integers(1, len(msg) - 1), max_size=6)))
    bounds = [0, *cuts, len(msg)]
    pieces = [(a, msg[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    pieces += data.draw(st.lists(st.sampled_from(pieces), max_size=3))  # retransmissions
    order = data.draw(st.permutations(pieces))
    s, out = stream()
    for offset, piece in order:
        s.write(piece, offset)
    assert b"".join(out) == b"\x16\x03\x03" + len(msg).to_bytes(2, "big") + msg
    assert s.finished and s.size == len(msg)


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_datagrams_end_in_rows_or_violations(data: bytes, from_client: bool) -> None:
    talk = Talk()
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)))
    failures = _Failures()
    engine_log = logging.getLogger("wirestream.processors.engine.sessions")
    engine_log.addHandler(failures)
    try:
        talk.send(from_client, data)
        talk.send(from_client, b"\xc0\x00\x00\x00\x01" + data)
        sink = talk.finish()
    finally:
        engine_log.removeHandler(failures)
    assert failures.messages == []  # violations only, never an exception out of the analyzer
    assert sink.rows("quic")


# -- Zeek's own case ------------------------------------------------------------------------------
@pytest.mark.timeout(300)
def test_firefox_case_matches_zeek(shared, tmp_path) -> None:
    result = compare_case(shared, "scripts.base.protocols.quic.firefox", {"quic", "ssl"}, tmp_path)
    for name in ("quic.log", "ssl.log"):
        got = result[name]
        assert got["exact"] == got["base_rows"] == 1, got
    conn = (tmp_path / "conn.log").read_text().splitlines()
    fields = next(line for line in conn if line.startswith("#fields")).split("\t")[1:]
    rows = [
        dict(zip(fields, line.split("\t"), strict=True))
        for line in conn
        if not line.startswith("#")
    ]
    assert [(r["service"], r["history"]) for r in rows] == [("quic,ssl", "Dd")]


# -- site options ---------------------------------------------------------------------------------
def test_max_history_length_stops_the_history_with_a_weird() -> None:
    talk = Talk()
    quic.configure(talk.engine, quic.QuicConfig(max_history_length=3))
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)) + bytes(20))
    talk.send(True, handshake(True))
    sink = talk.finish()
    assert sink.rows("quic")[0]["history"] == "ISX"
    weirds = [w for w in sink.rows("weird") if w["name"] == "QUIC_max_history_length_reached"]
    assert len(weirds) == 1


@pytest.mark.parametrize("limit, history", [(-1, "IS"), (0, "ISXX"), (1, "ISX")])
def test_max_discarded_packet_events(limit: int, history: str) -> None:
    talk = Talk()
    quic.configure(talk.engine, quic.QuicConfig(max_discarded_packet_events=limit))
    talk.send(True, client_initial(crypto_frame(0, TLS13_CH)) + bytes(20))
    talk.send(True, bytes(30))
    assert talk.finish().rows("quic")[0]["history"] == history


def test_zeek_command_line_redefs_reach_the_config() -> None:
    from wirestream.processors.engine import zeek_script

    s = zeek_script.ZeekSettings()
    zeek_script.apply_command_redef(s, "QUIC::max_discarded_packet_events=-1")
    zeek_script.apply_command_redef(s, "QUIC::max_history_length=3")
    values = s.overrides["protocol_configs"]["quic"]
    assert quic.QuicConfig(**values) == quic.QuicConfig(3, -1)
