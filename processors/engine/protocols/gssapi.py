"""GSSAPI/SPNEGO tokens as Zeek's GSSAPI analyzer reads them (``gssapi-protocol.pac``, ``asn1.pac``).

Protocols carrying security blobs (SMB's negotiate and session setup) hand each blob to
Zeek's GSSAPI analyzer, which confirms itself (service ``gssapi`` in conn.log) whenever a blob
parses without a binpac exception. :func:`gssapi_token_parses` answers exactly that, following
binpac's layout rules rather than DER's: lengths are taken as written, argument lists run to
the end of the blob, an argument index outside the ones the grammar names is an error. The
NTLMSSP tokens inside are handed on (for ntlm.log); Kerberos ones are not analysed yet (no
kerberos.log, no ``krb`` service).
"""

from __future__ import annotations

from collections.abc import Callable

from wirestream.processors.engine.protocols.bytereader import (
    ParseError,
    Reader,
    asn1_encoding,
    asn1_meta,
)

APP_0_TAG = 0x60  # [APPLICATION 0]: the initial context token (is_init)
INDEX_TAG_OFFSET = 0xA0  # ASN1_INDEX_TAG_OFFSET: [n] context tags
MIC_TOKEN_ID, WRAP_TOKEN_ID = 0x0404, 0x0504


def _element(r: Reader) -> tuple[int, Reader]:
    """A ``[n]``-tagged argument: its index and a reader bounded to its ``&length``."""
    tag, _first, length = asn1_meta(r)
    return (tag - INDEX_TAG_OFFSET) & 0xFF, r.sub(length)


def _mech_token(r: Reader, on_ntlm: Callable[[bytes], None]) -> None:
    """GSSAPI_NEG_TOKEN_MECH_TOKEN: a Kerberos token with its OID must parse as KRB_OID_BLOB;
    an NTLMSSP token goes to the NTLM analyzer (``forward_blob``, after those checks)."""
    token = asn1_encoding(r)
    if token[:1] == b"\x60":
        inner = Reader(token)
        asn1_meta(inner)
        asn1_encoding(inner)  # the OID
        inner.take(2)  # token id
    elif token[:7] == b"NTLMSSP":
        on_ntlm(token)


def _ignore(_: object) -> None:
    return None


def _parse(
    blob: bytes, on_ntlm: Callable[[bytes], None], on_neg_result: Callable[[int], None]
) -> None:
    r = Reader(blob)
    tag, first, _length = asn1_meta(r)
    if (tag << 8) | first in (MIC_TOKEN_ID, WRAP_TOKEN_ID):
        return
    if tag == APP_0_TAG:  # NegTokenInit: OID, [0] wrapper, SEQUENCE, arguments to the end
        asn1_encoding(r)
        asn1_meta(r)
        asn1_meta(r)
        while r.pos < r.end:
            index, arg = _element(r)
            if index in (0, 1, 3):
                asn1_encoding(arg)
            elif index == 2:
                _mech_token(arg, on_ntlm)
            else:
                raise ParseError(f"NegTokenInit argument [{index}]")
        return
    asn1_meta(r)  # NegTokenResp: SEQUENCE, arguments to the end
    while r.pos < r.end:
        index, arg = _element(r)
        if index == 0:  # negState: gssapi_neg_result (binary_to_int64 of the content)
            content = asn1_encoding(arg)
            on_neg_result(int.from_bytes(content, "big") if len(content) <= 8 else 0)
        elif index in (1, 3):
            asn1_encoding(arg)
        elif index == 2:
            _mech_token(arg, on_ntlm)
        else:
            raise ParseError(f"NegTokenResp argument [{index}]")


def gssapi_token_parses(
    blob: bytes,
    on_ntlm: Callable[[bytes], None] = _ignore,
    on_neg_result: Callable[[int], None] = _ignore,
) -> bool:
    """True when Zeek's GSSAPI analyzer parses ``blob`` without an exception (it confirms).
    Along the way, in the parser's order: NTLMSSP tokens to ``on_ntlm``, each negotiation
    state to ``on_neg_result`` (Zeek's ``gssapi_neg_result``)."""
    try:
        _parse(blob, on_ntlm, on_neg_result)
    except ParseError:
        return False
    return True
