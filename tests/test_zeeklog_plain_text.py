"""The writer's fast test for text it may write as is agrees with the exact escaping."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from wirestream.schemas.zeek_types import parse_type
from wirestream.schemas.zeeklog.escape import escape_field
from wirestream.schemas.zeeklog.tsv import TsvDialect, _plain_text, field_formatter, line_formatter

DIALECTS = [TsvDialect(), TsvDialect(separator=",", set_separator=";"), TsvDialect(utf8=False)]
texts = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.sampled_from("ab \\\t,;#-\x7f\x1f\x80é("), max_size=8),
)


@settings(max_examples=1500, deadline=None)
@given(value=texts)
def test_plain_text_is_written_unchanged_by_the_exact_path(value: str) -> None:
    for dialect in DIALECTS:
        top = (dialect.separator,)
        if _plain_text(top)(value):
            assert escape_field(value, top, dialect.utf8) == value


@settings(max_examples=1500, deadline=None)
@given(value=texts)
def test_string_fields_match_the_exact_escaping(value: str) -> None:
    string = parse_type("string")
    for dialect in DIALECTS:
        top = (dialect.separator,)
        reserved = value in (dialect.unset_field, dialect.empty_field)
        want = (
            escape_field(dialect.empty_field, top, dialect.utf8)
            if not value
            else f"\\x{ord(value[0]):02x}" + escape_field(value[1:], top, dialect.utf8)
            if reserved
            else escape_field(value, top, dialect.utf8)
        )
        assert field_formatter(string, dialect)(value) == want
        assert line_formatter([("s", string)], dialect)({"s": value}) == want


def test_examples() -> None:
    plain = _plain_text(("\t",))
    assert plain("Mozilla/5.0 (X11)")
    assert not plain("a\tb")
    assert not plain("back\\slash")
    assert not plain("caf\u00e9")
    assert not plain("bell\x07")
    assert not _plain_text((",",))("a,b")
