"""notice.log rows as Zeek's notice framework completes them, and notice-only handler bodies."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from wirestream.processors.engine.notice import (
    NoticeScriptError,
    notice_record,
    read_handler,
    run_handler,
)
from wirestream.processors.engine.zeek_script import ZeekSettings, apply_script
from wirestream.schemas.zeek_types import zeek_log_schemas

CONN = SimpleNamespace(
    uid="CAbc", transport="udp", id_tuple=lambda: ("10.1.1.1", 5353, "10.2.2.2", 53)
)


def test_notice_record_defaults_and_connection_fields():
    row = notice_record(
        "Scan::Port_Scan", 12.5, msg="m", uid="CAbc", conn_id=CONN.id_tuple(), transport="udp"
    )
    assert set(row) <= set(zeek_log_schemas()["notice"].names)  # Zeek's own columns only
    assert row["actions"] == ["Notice::ACTION_LOG"]  # the default policy hook
    assert row["email_dest"] == [] and row["suppress_for"] == 3600.0
    assert (row["src"], row["dst"], row["p"], row["proto"]) == ("10.1.1.1", "10.2.2.2", 53, "udp")
    assert row["id.orig_p"] == 5353 and row["n"] is None and row["peer_descr"] is None


def test_notice_without_a_connection_has_no_proto():
    row = notice_record("X::Y", 1.0, msg="m", src="10.0.0.1")
    assert row["proto"] is None and row["uid"] is None and row["id.orig_h"] is None
    assert row["src"] == "10.0.0.1" and row["dst"] is None


def test_handler_body_with_locals_fmt_and_options():
    text = (
        "event My::found(c: connection, n: count) &priority=3\n{\n"
        '  local m = fmt("%s over %d%%", "x", My::limit);\n'
        '  NOTICE([$note=Found, $msg=m, $sub="extra", $conn=c]);\n}'
    )
    handler = read_handler("My::found", text, "My")
    (row,) = run_handler(handler, CONN, 7.0, {"My::limit": 42}.__getitem__)
    assert row["note"] == "My::Found" and row["msg"] == "x over 42%" and row["sub"] == "extra"
    assert row["uid"] == "CAbc" and row["ts"] == 7.0


@pytest.mark.parametrize(
    "body",
    [
        'print "hi";',
        'NOTICE([$msg="no note"]);',
        'NOTICE([$note=X, $identifier="i"]);',
        'local m = fmt("%x", 3); NOTICE([$note=X, $msg=m]);',
    ],
)
def test_bodies_that_are_not_only_notices_are_refused(body):
    text = f"event e(c: connection) {{ {body} }}"
    try:
        handler = read_handler("e", text, "GLOBAL")
    except NoticeScriptError:
        return
    with pytest.raises(NoticeScriptError):  # fmt's %x shows when run
        run_handler(handler, CONN, 1.0, {}.__getitem__)


def test_zeek_script_keeps_notice_handlers_and_reports_the_rest():
    settings = ZeekSettings()
    apply_script(
        settings,
        "module A;\n"
        'event a_event(c: connection) { NOTICE([$note=Seen, $msg="seen", $conn=c]); }\n'
        'event b_event(c: connection) { print "x"; }\n',
        "t.zeek",
    )
    assert set(settings.notice_handlers) == {"a_event"}
    assert settings.handled_events == {"a_event", "b_event"}
    assert any(
        "event b_event" in item and "handlers do not run" in item for item in settings.ignored
    )


def test_an_option_the_engine_lacks_is_a_clear_error():
    text = 'event e(c: connection) { NOTICE([$note=X, $msg=fmt("%d", unknown_opt), $conn=c]); }'
    handler = read_handler("e", text, "Mod")
    with pytest.raises(NoticeScriptError, match="Mod::unknown_opt: not an option"):
        run_handler(handler, CONN, 1.0, {}.__getitem__)


def test_new_notice_types_need_no_declaration():
    settings = ZeekSettings()
    apply_script(settings, "module M;\nredef enum Notice::Type += {\n  A, B\n};\n", "t.zeek")
    assert settings.ignored == []
