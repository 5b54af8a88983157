"""software.log, as Zeek's ``base/frameworks/software`` fed by the HTTP policy scripts
``policy/protocols/http/software`` and ``software-browser-plugins``.

Not a protocol analyzer: script-level handlers of HTTP's header and message-done events (the
HTTP analyzer calls the handlers listed in its shared state, see :func:`configure`).

* ``http/software``: a client's User-Agent is a browser, a server's Server an HTTP server,
  X-Powered-By and MicrosoftSharePointTeamServices an application server;
* ``http/software-browser-plugins``: X-Flash-Version (or a Flash X-Requested-With) makes a
  browser plugin once the request is done, named ``AdobeAIR-Flash`` under an AdobeAIR user
  agent. Not done: its plugin list read from requests to Omniture servers (``log_http``).
* the framework: :func:`parse` turns the unparsed version into a name and version (Zeek's
  ``Software::parse``/``parse_mozilla`` regexes), ``Software::found`` drops repeats within
  ``found_cache_interval`` and hosts outside ``Software::asset_tracking``, and a host logs a
  piece of software again only for a version it has not logged that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wirestream.processors.engine.protocols.http import SCRIPT_HANDLERS_KEY, unescape_uri
from wirestream.processors.engine.protocols.known import addr_matches_host, check_host_choice
from wirestream.schemas.zeeklog.escape import bytes_text as text
from wirestream.schemas.zeeklog.escape import text_bytes

if TYPE_CHECKING:
    from wirestream.processors.engine.engine import Engine

FOUND_CACHE_INTERVAL = 600.0  # Software::found_cache_interval
TRACKED_EXPIRE = 86400.0  # tracked_software &create_expire=1day
MAX_SOFTWARE_CACHE_SIZE = 20  # Software::max_software_cache_size
ALTERNATE_NAMES = {"Flash Player": "Flash"}  # Software::alternate_names


@dataclass(frozen=True)
class SoftwareConfig:
    """Which scripts are loaded, and ``Software::asset_tracking`` (a ``Host`` choice)."""

    asset_tracking: str = "LOCAL_HOSTS"
    http_software: bool = False  # policy/protocols/http/software
    browser_plugins: bool = False  # policy/protocols/http/software-browser-plugins

    def __post_init__(self) -> None:
        check_host_choice("Software::asset_tracking", self.asset_tracking)


@dataclass(frozen=True)
class Version:
    """Software::Version."""

    major: int | None = None
    minor: int | None = None
    minor2: int | None = None
    minor3: int | None = None
    addl: str | None = None


@dataclass(frozen=True)
class Description:
    name: str
    version: Version = field(default_factory=Version)


# ----------------------------------------------------------------------------- Software::parse
# Zeek's regexes as Python patterns over text; Zeek's matcher finds leftmost-longest matches,
# which these greedy patterns also give.

_NUMBERS = re.compile(r"[0-9]+")
_VERSION_SPLIT = re.compile(r"([/\-_]|( [(v]+))?[0-9\-._, ]{2,}")
_JUNK_END = re.compile(r"([/\-_]|( [(v]+))$")
_JUNK = re.compile(r"([/\-_]|( [(v]+))")
_SEP_START = re.compile(r"^[/\-._v(]")
_NUMBER_SEPS = re.compile(r"[\-._,\[({ ]")
_ADDL_PAREN = re.compile(r"^[ \t]*\([a-zA-Z0-9\-._ \t]*\)")
_ADDL_SEPS = re.compile(r"[\-._,;\[\](){} ]")
_PARENS = re.compile(r"[()]")
_ZEEK_SPACE = " \t\n\r\f\v"


def extract_count(s: str) -> int:
    """base/utils/numbers' extract_count: the first number in ``s``, else 0."""
    m = _NUMBERS.search(s)
    return int(m.group()) if m else 0


def split_n(s: str, pattern: re.Pattern[str], incl_sep: bool, max_seps: int) -> list[str]:
    """Zeek's split_string_n: at most ``max_seps`` separators, kept as elements if asked."""
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(s):
        if len(out) // (2 if incl_sep else 1) >= max_seps:
            break
        out.append(s[pos : m.start()])
        if incl_sep:
            out.append(m.group())
        pos = m.end()
    out.append(s[pos:])
    return out


def split_all(s: str, pattern: re.Pattern[str]) -> list[str]:
    """Zeek's split_string_all: every separator kept as an element."""
    return split_n(s, pattern, True, len(s) + 1)


def _strip(s: str) -> str:
    return s.strip(_ZEEK_SPACE)


def parse(unparsed: str) -> Description:
    """Software::parse: a name and version out of an unparsed version string."""
    if re.search(r"^(Mozilla|Opera)/[0-9]+\.", unparsed):
        return parse_mozilla(unparsed)
    name = "<parse error>"
    major = minor = minor2 = minor3 = None
    addl: str | None = None
    if re.search(r"A/[0-9.]*/Google/Pixel", unparsed):
        parts = split_all(unparsed, re.compile("/"))
        if len(parts) > 2:
            vs = parts[2]
            v = parse(vs).version if "." in vs else Version(major=extract_count(vs))
            return Description("Android (Google Pixel)", v)
        return Description("Android (Google Pixel)")
    clean = text(unescape_uri(text_bytes(unparsed.replace("\\x", "%"))))
    parts = split_n(clean, _VERSION_SPLIT, True, 1)
    first = parts[0]
    if _JUNK_END.search(first):
        first = _strip(_JUNK.sub("", first, count=1))
    name = _strip(first.replace("(", "", 1)) if first.startswith("(") else _strip(first)
    if len(parts) >= 2:
        sv = _strip(parts[1])
        if _SEP_START.search(sv):
            sv = _strip(_SEP_START.sub("", sv, count=1))
        numbers = split_n(sv, _NUMBER_SEPS, False, 3)
        rest = parts[2] if len(parts) > 2 else ""
        if len(numbers) > 4 and numbers[4] != "":
            addl = _strip(numbers[4])
        elif rest not in ("", ")"):
            if _ADDL_PAREN.search(rest):
                addl = split_n(rest, _PARENS, False, 2)[1]
            else:
                vp = split_n(rest, _ADDL_SEPS, False, 3)
                picked = next((p for p in vp[:3] if p != ""), None)
                addl = _strip(picked if picked is not None else rest)
        if len(numbers) > 3 and numbers[3] != "":
            minor3 = extract_count(numbers[3])
        if len(numbers) > 2 and numbers[2] != "":
            minor2 = extract_count(numbers[2])
        if len(numbers) > 1 and numbers[1] != "":
            minor = extract_count(numbers[1])
        if numbers[0] != "":
            major = extract_count(numbers[0])
    version = Version(major, minor, minor2, minor3, addl)
    return Description(ALTERNATE_NAMES.get(name, name), version)


def _after(unparsed: str, pattern: str) -> Version | None:
    """parse(split_string_all(unparsed, pattern)[1])$version, when there is a match."""
    m = re.search(pattern, unparsed)
    return parse(m.group()).version if m else None


def parse_mozilla(unparsed: str) -> Description:
    """Software::parse_mozilla: browsers by their user agent's markers."""
    name = "<unknown browser>"
    v: Version | None = None
    if re.search(r"Opera [0-9.]*$", unparsed):
        name, v = "Opera", _after(unparsed, r"Opera [0-9.]*$")
    elif re.search(r" MSIE |Trident/", unparsed):
        name = "MSIE"
        trident = {"4": 8, "5": 9, "6": 10, "7": 11}
        m = re.search(r"Trident/([4-7])\.0", unparsed)
        if m:
            v = Version(major=trident[m.group(1)], minor=0)
        else:
            v = _after(unparsed, r"MSIE [0-9]{1,2}\.*[0-9]*b?[0-9]*")
    elif "Edge/" in unparsed:
        name, v = "Edge", _after(unparsed, r"Edge/[0-9.]*")
    elif re.search(r"Version/.*Safari/", unparsed):
        name, v = "Safari", _after(unparsed, r"Version/[0-9.]*")
        if v is not None and re.search(r" Mobile/?.* Safari", unparsed):
            v = Version(v.major, v.minor, v.minor2, v.minor3, "Mobile")
    elif re.search(r"(Firefox|Netscape|Thunderbird)/[0-9.]*", unparsed):
        m = re.search(r"(Firefox|Netscape|Thunderbird)/[0-9.]*", unparsed)
        assert m is not None
        found = parse(m.group())
        name, v = found.name, found.version
    elif re.search(r"Chrome/.*Safari/", unparsed):
        name, v = "Chrome", _after(unparsed, r"Chrome/[0-9.]*")
    elif unparsed.startswith("Opera/"):
        mobile = re.search(r"Opera M(ini|obi)", unparsed)
        if mobile and re.search(r"Opera M(ini|obi)/", unparsed):
            name = mobile.group()
            v = _after(unparsed, r"Version/[0-9.]*") or _after(unparsed, r"Opera Mini/[0-9.]*")
        else:
            name, v = "Opera", _after(unparsed, r"Version/[0-9.]*")
    elif "Flash%20Player" in unparsed:
        name = "Flash"
        parts = split_all(unparsed, re.compile(r"[/ ]"))
        if len(parts) > 2:
            v = parse(parts[2]).version
    elif re.search(r"AdobeAIR/[0-9.]*", unparsed):
        name, v = "AdobeAIR", _after(unparsed, r"AdobeAIR/[0-9.]*")
    elif re.search(r"AppleWebKit/[0-9.]*", unparsed):
        name, v = "Unspecified WebKit", _after(unparsed, r"AppleWebKit/[0-9.]*")
    elif re.search(r" Java/[0-9]\.", unparsed):
        name, v = "Java", _after(unparsed, r"Java/[0-9._]*")
    return Description(name, v or Version())


# ----------------------------------------------------------------------------- the framework


class SoftwareTracker:
    """Software::found / new / register for one engine, and the HTTP scripts' handlers."""

    def __init__(self, engine: Engine, config: SoftwareConfig) -> None:
        self.engine = engine
        self.config = config
        self.found_cache: dict[tuple, float] = {}  # found_cache &create_expire
        self.tracked: dict[str, tuple[float, dict[str, list[str]]]] = {}  # tracked_software
        self.parse_cache: dict[str, Description] = {}
        self.flash: dict[int, str] = {}  # c$http$flash_version, by the HTTP record

    def found(self, host: str, host_p: int | None, software_type: str, unparsed: str) -> bool:
        """Software::found for an unparsed version string."""
        if not self._tracked(host):
            return False
        now = self.engine.now
        key = (host, host_p, software_type, unparsed)
        seen = self.found_cache.get(key)
        if seen is not None and now - seen < FOUND_CACHE_INTERVAL:
            return True
        self.found_cache[key] = now
        desc = self.parse_cache.get(unparsed)
        if desc is None:
            desc = self.parse_cache[unparsed] = parse(unparsed)
        self._register(now, host, host_p, software_type, desc, unparsed)
        return True

    def _tracked(self, host: str) -> bool:
        """addr_matches_host(host, Software::asset_tracking)."""
        return addr_matches_host(self.engine.local_nets, host, self.config.asset_tracking)

    def _register(
        self,
        ts: float,
        host: str,
        host_p: int | None,
        software_type: str,
        desc: Description,
        unparsed: str,
    ) -> None:
        """Software::register: log unless this host logged this name and version today."""
        entry = self.tracked.get(host)
        if entry is None or ts - entry[0] >= TRACKED_EXPIRE:
            entry = self.tracked[host] = (ts, {})
        versions = entry[1].setdefault(desc.name, [])
        if unparsed in versions:
            return
        versions.append(unparsed)
        if MAX_SOFTWARE_CACHE_SIZE and len(versions) > MAX_SOFTWARE_CACHE_SIZE:
            versions[:] = [unparsed]
        v = desc.version
        self.engine.sink.log(
            "software",
            {
                "ts": ts,
                "host": host,
                "host_p": host_p,
                "software_type": software_type,
                "name": desc.name,
                "version.major": v.major,
                "version.minor": v.minor,
                "version.minor2": v.minor2,
                "version.minor3": v.minor3,
                "version.addl": v.addl,
                "unparsed_version": unparsed,
            },
        )

    # -- the HTTP scripts' handlers (called by HttpAnalyzer) ---------------------------------
    def http_header(self, http: Any, is_orig: bool, lname: bytes, value: bytes) -> None:
        cid = http.ctx.conn_id
        if self.config.browser_plugins and is_orig:  # priority 3
            if lname == b"x-flash-version":
                self.flash[id(http.info)] = "Flash/" + text(value)
            elif lname == b"x-requested-with" and b"Flash" in value:
                self.flash[id(http.info)] = text(value)
        if not self.config.http_software:  # priority 2
            return
        if is_orig:
            # HTTP::ignored_user_agents is /NO_DEFAULT/
            if lname == b"user-agent" and b"NO_DEFAULT" not in value:
                self.found(cid.orig_h, None, "HTTP::BROWSER", text(value))
        elif lname == b"server":
            self.found(cid.resp_h, cid.resp_p, "HTTP::SERVER", text(value))
        elif lname == b"x-powered-by":
            self.found(cid.resp_h, cid.resp_p, "HTTP::APPSERVER", text(value))
        elif lname == b"microsoftsharepointteamservices":
            self.found(cid.resp_h, cid.resp_p, "HTTP::APPSERVER", "SharePoint/" + text(value))

    def http_message_done(self, http: Any, is_orig: bool) -> None:
        flash = self.flash.pop(id(http.info), None)
        if not (is_orig and flash is not None and self.config.browser_plugins):
            return
        agent = http.info.user_agent
        if agent is not None and "AdobeAIR" in agent:
            flash = "AdobeAIR-" + flash
        self.found(http.ctx.conn_id.orig_h, None, "HTTP::BROWSER_PLUGIN", flash)


def configure(engine: Engine, config: SoftwareConfig) -> SoftwareTracker:
    """Load the scripts into ``engine``: HTTP analyzers made from now on call the handlers."""
    tracker = SoftwareTracker(engine, config)
    engine.analyzer_state.setdefault(SCRIPT_HANDLERS_KEY, []).append(tracker)
    return tracker
