"""notice.log: Zeek's notice framework for the notices scripts raise, and the one kind of
script handler the engine can run, an event handler whose body only raises notices.

Zeek fills a notice (``Notice::Info``) from what ``NOTICE`` is given: ``$conn`` brings uid and
id, the id brings src, dst and p, p brings proto; ts is the network time; the default policy
hook adds ``Notice::ACTION_LOG``; ``suppress_for`` defaults to
``Notice::default_suppression_interval`` (1 hr); email_dest is an empty set; the rest stays
unset. A standalone Zeek logs every notice at once (suppression only drops repeats of the same
note and identifier within suppress_for).

Handler bodies understood (anything else leaves the handler unrun, reported by the reader):
``local NAME = EXPR;`` and ``NOTICE([$field=EXPR, ...]);`` where EXPR is a string or count
literal, a local, ``fmt("...", EXPR, ...)`` with ``%d``/``%s``/``%%``, the event's connection
parameter (for ``$conn``), an option the engine knows (``GridFTP::size_threshold``), or a
notice type name (for ``$note``, qualified with the script's module).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .api import Record, id_columns
from .zeek_script import split_top

log = logging.getLogger(__name__)

DEFAULT_SUPPRESSION_INTERVAL = 3600.0  # Notice::default_suppression_interval
DEFAULT_ACTIONS = ("Notice::ACTION_LOG",)  # the default Notice::policy hook's action
HANDLERS_KEY = "notice_handlers"
_FIELDS = ("note", "msg", "sub", "conn", "n", "src", "dst", "p", "uid", "suppress_for")


class NoticeScriptError(ValueError):
    """A handler body that is not only notices (the handler is then not run)."""


def notice_record(
    note: str,
    ts: float,
    *,
    msg: str | None = None,
    sub: str | None = None,
    uid: str | None = None,
    conn_id: tuple[str, int, str, int] | None = None,
    transport: str | None = None,
    n: int | None = None,
    src: str | None = None,
    dst: str | None = None,
    p: int | None = None,
    suppress_for: float = DEFAULT_SUPPRESSION_INTERVAL,
    actions: tuple[str, ...] = DEFAULT_ACTIONS,
) -> Record:
    """One notice.log row as Zeek's notice framework completes it (see the module docstring).
    ``transport`` is the connection's transport ("tcp", "udp", "icmp"): proto comes from p."""
    if conn_id is not None:
        src = conn_id[0] if src is None else src
        dst = conn_id[2] if dst is None else dst
        p = conn_id[3] if p is None else p
    record: Record = {
        "ts": ts,
        "uid": uid,
        **id_columns(conn_id),
        "fuid": None,
        "file_mime_type": None,
        "file_desc": None,
        "proto": transport if p is not None else None,
        "note": note,
        "msg": msg,
        "sub": sub,
        "src": src,
        "dst": dst,
        "p": p,
        "n": n,
        "peer_descr": None,
        "actions": list(actions),
        "email_dest": [],
        "suppress_for": suppress_for,
    }
    return record


# -- handler bodies -----------------------------------------------------------------------------

_LOCAL = re.compile(r"^local\s+([A-Za-z_]\w*)\s*(?::\s*\w+\s*)?=\s*(.+)$", re.S)
_NOTICE = re.compile(r"^NOTICE\s*\(\s*\[(.*)\]\s*\)$", re.S)
_FMT = re.compile(r"^fmt\s*\((.*)\)$", re.S)
_PARAM = re.compile(r"^event\s+[\w:]+\s*\(([^)]*)\)\s*(?:&priority\s*=\s*-?\d+\s*)?\{(.*)\}$", re.S)
_NAME = re.compile(r"^[A-Za-z_][\w:]*$")


@dataclass(frozen=True)
class NoticeHandler:
    """An event handler that raises notices: each a mapping of NOTICE fields to expressions."""

    event: str
    module: str
    conn_param: str | None
    locals: tuple[tuple[str, str], ...]
    notices: tuple[tuple[tuple[str, str], ...], ...]


def read_handler(event: str, text: str, module: str) -> NoticeHandler:
    """``event NAME(params) { body }`` (in ``module``) -> a :class:`NoticeHandler`."""
    m = _PARAM.match(text.strip())
    if not m:
        raise NoticeScriptError(f"event {event}: not a handler with a body")
    conn_param = None
    for param in split_top(m.group(1), ","):
        name, _, type_ = param.partition(":")
        if type_.strip() == "connection":
            conn_param = name.strip()
    locals_: list[tuple[str, str]] = []
    notices: list[tuple[tuple[str, str], ...]] = []
    for stmt in (s.strip() for s in split_top(m.group(2), ";")):
        if not stmt:
            continue
        lm = _LOCAL.match(stmt)
        if lm:
            locals_.append((lm.group(1), lm.group(2).strip()))
            continue
        nm = _NOTICE.match(stmt)
        if not nm:
            raise NoticeScriptError(f"event {event}: statement {stmt[:40]!r} is not a NOTICE")
        fields = []
        for item in split_top(nm.group(1), ","):
            key, eq, value = item.strip().partition("=")
            key = key.strip()
            if not key.startswith("$") or not eq or key[1:] not in _FIELDS:
                raise NoticeScriptError(f"event {event}: NOTICE field {item.strip()!r}")
            fields.append((key[1:], value.strip()))
        if not any(k == "note" for k, _ in fields):
            raise NoticeScriptError(f"event {event}: NOTICE without $note")
        notices.append(tuple(fields))
    if not notices:
        raise NoticeScriptError(f"event {event}: raises no NOTICE")
    return NoticeHandler(event, module, conn_param, tuple(locals_), tuple(notices))


def _format(template: str, args: list[Any]) -> str:
    """Zeek's fmt() for %d, %s and %%."""
    out, i, k = [], 0, 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template):
            spec = template[i + 1]
            if spec == "%":
                out.append("%")
            elif spec in "ds":
                if k >= len(args):
                    raise NoticeScriptError(f"fmt: too few arguments for {template!r}")
                out.append(str(args[k]))
                k += 1
            else:
                raise NoticeScriptError(f"fmt: %{spec} is not supported")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _qualified(name: str, module: str) -> str:
    """A name as the handler's script means it: unqualified names are in its module."""
    return name if "::" in name else f"{module}::{name}"


def _string_literal(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].encode().decode("unicode_escape")
    return None


@dataclass
class _Scope:
    handler: NoticeHandler
    conn: Any
    option: Callable[[str], Any]
    values: dict[str, Any]

    def eval(self, expr: str) -> Any:
        literal = _string_literal(expr)
        if literal is not None:
            return literal
        if expr.isdigit():
            return int(expr)
        m = _FMT.match(expr)
        if m:
            parts = [p.strip() for p in split_top(m.group(1), ",")]
            template = _string_literal(parts[0]) if parts else None
            if template is None:
                raise NoticeScriptError(f"fmt needs a string literal first: {expr!r}")
            return _format(template, [self.eval(p) for p in parts[1:]])
        if expr in self.values:
            return self.values[expr]
        if expr == self.handler.conn_param:
            return self.conn
        if _NAME.match(expr):
            name = _qualified(expr, self.handler.module)
            try:
                return self.option(name)
            except KeyError as exc:
                raise NoticeScriptError(f"{name}: not an option the engine has") from exc
        raise NoticeScriptError(f"expression {expr!r} is not supported")


def run_handler(
    handler: NoticeHandler,
    conn: Any,
    ts: float,
    option: Callable[[str], Any],
) -> list[Record]:
    """The notice.log rows ``handler`` raises for ``conn`` (a Connection) at network time ``ts``.
    ``option(name)`` gives a script option's value (KeyError if the engine has none)."""
    scope = _Scope(handler, conn, option, {})
    for name, expr in handler.locals:
        scope.values[name] = scope.eval(expr)
    rows = []
    for fields in handler.notices:
        given = dict(fields)
        note = _qualified(given.pop("note"), handler.module)
        kwargs: dict[str, Any] = {k: scope.eval(v) for k, v in given.items() if k != "conn"}
        if "conn" in given:
            c = scope.eval(given["conn"])
            kwargs.setdefault("uid", c.uid)
            kwargs["conn_id"] = c.id_tuple()
            kwargs["transport"] = c.transport
        rows.append(notice_record(note, ts, **kwargs))
    return rows


def configure(
    engine: Any, handlers: Mapping[str, tuple[NoticeHandler, ...]], option: Callable[[str], Any]
) -> None:
    """Give ``engine`` the notice-raising handlers (event -> handlers) and option lookup."""
    engine.analyzer_state[HANDLERS_KEY] = (dict(handlers), option)


def raise_event(engine: Any, event: str, conn: Any, ts: float) -> None:
    """``event`` happened for ``conn``: run its notice handlers into notice.log."""
    handlers, option = engine.analyzer_state.get(HANDLERS_KEY, ({}, None))
    for handler in handlers.get(event, ()):
        try:
            rows = run_handler(handler, conn, ts, option)
        except NoticeScriptError as exc:  # the handler's notices are not raised; say so
            log.warning("handler of %s not run for %s: %s", event, conn.uid, exc)
            continue
        for row in rows:
            engine.sink.log("notice", row)
