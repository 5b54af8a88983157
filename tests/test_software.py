"""software.log: Software::parse, the framework's dedup and tracking, the HTTP scripts, vs Zeek."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from engine_kit import ListSink, TcpTalk
from wirestream.processors.engine.engine import Engine
from wirestream.processors.engine.protocols.software import (
    SoftwareConfig,
    Version,
    configure,
    parse,
    split_n,
)

# Unparsed versions and what Zeek's Software::parse makes of them (from Zeek's own
# version-parsing test).
VECTORS = [
    ("OpenSSH_5.2", "OpenSSH", Version(5, 2)),
    (
        "Apache/2.0.63 (Unix) mod_auth_kerb/5.3 mod_ssl/2.0.63 OpenSSL/0.9.7a",
        "Apache",
        Version(2, 0, 63, addl="Unix"),
    ),
    ("ProFTPD 1.2.5rc1 Server (Debian)", "ProFTPD", Version(1, 2, 5, addl="rc1")),
    ("wu-2.4.2-academ[BETA-18-VR14](1)", "wu", Version(2, 4, 2, addl="academ")),
    ("Java/1.6.0_13", "Java", Version(1, 6, 0, 13)),
    ("Wget/1.9+cvs-stable (Red Hat modified)", "Wget", Version(1, 9, addl="+cvs")),
    ("Zope/(Zope 2.7.8-final, python 2.3.5, darwin) ZServer/1.1", "Zope/(Zope", Version(2, 7, 8, addl="final")),
    ("The Bat! (v2.00.9) Personal", "The Bat!", Version(2, 0, 9, addl="Personal")),
    ("Flash/10,2,153,1", "Flash", Version(10, 2, 153, 1)),
    ("(vsFTPd 2.0.5)", "vsFTPd", Version(2, 0, 5)),
    (
        "Mozilla/5.0 (iPhone; U; CPU iPhone OS 4_3_2 like Mac OS X; en-us) AppleWebKit/533.17.9 "
        "(KHTML, like Gecko) Version/5.0.2 Mobile/8H7 Safari/6533.18.5",
        "Safari",
        Version(5, 0, 2, addl="Mobile"),
    ),
    ("Opera/9.80 (Windows NT 6.1; U; sv) Presto/2.7.62 Version/11.01", "Opera", Version(11, 1)),
    ("Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko", "MSIE", Version(11, 0)),
    (
        "Mozilla/5.0 (Windows; U; Windows NT 5.1; de; rv:1.9.2.11) Gecko/20101013 "
        "Lightning/1.0b2 Thunderbird/3.1.5",
        "Thunderbird",
        Version(3, 1, 5),
    ),
    ("Flash%20Player/26.0.0.137 CFNetwork/811.5.4 Darwin/16.6.0 (x86_64)", "Flash", Version(26, 0, 0, 137, "CFNetwork/811")),
    ("QQ%E9%82%AE%E7%AE%B1/5.3.2.8 CFNetwork/811.5.4", "QQ邮箱", Version(5, 3, 2, 8, "CFNetwork/811")),
    ("A/9/Google/Pixel#2/walleye/unknown/QCX3", "Android (Google Pixel)", Version(9)),
    ("Total Commander", "Total Commander", Version()),
]  # fmt: skip


@pytest.mark.parametrize(("unparsed", "name", "version"), VECTORS)
def test_parse_matches_zeek(unparsed: str, name: str, version: Version) -> None:
    got = parse(unparsed)
    assert (got.name, got.version) == (name, version)


def test_split_n_keeps_separators_and_stops_at_the_limit() -> None:
    assert split_n("a-b-c-d", re.compile("-"), False, 2) == ["a", "b", "c-d"]
    assert split_n("a-b", re.compile("-"), True, 5) == ["a", "-", "b"]
    assert split_n("abc", re.compile("-"), True, 1) == ["abc"]


def engine(**config: object) -> tuple[Engine, ListSink]:
    sink = ListSink()
    eng = Engine(sink, seed=1)
    configure(eng, SoftwareConfig(**config))  # type: ignore[arg-type]
    return eng, sink


def browse(eng: Engine, request_headers: str, reply_headers: str, port: int = 40000) -> None:
    talk = TcpTalk(eng, a=("10.0.0.1", port), b=("10.0.0.2", 80))
    talk.handshake()
    talk.send(True, "AP", f"GET / HTTP/1.1\r\nHost: h\r\n{request_headers}\r\n".encode())
    talk.send(False, "AP", f"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{reply_headers}\r\n".encode())


UA = "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/535.2 (KHTML, like Gecko) Chrome/15.0.874.121 Safari/535.2"


def test_http_software_browser_and_servers() -> None:
    eng, sink = engine(http_software=True)
    browse(eng, f"User-Agent: {UA}\r\n", "Server: nginx/1.2.3\r\nX-Powered-By: PHP/5.3.2\r\n")
    eng.finish()
    rows = sink.rows("software")
    assert [(r["host"], r["host_p"], r["software_type"], r["name"]) for r in rows] == [
        ("10.0.0.1", None, "HTTP::BROWSER", "Chrome"),
        ("10.0.0.2", 80, "HTTP::SERVER", "nginx"),
        ("10.0.0.2", 80, "HTTP::APPSERVER", "PHP"),
    ]
    chrome = rows[0]
    assert (chrome["version.major"], chrome["version.minor2"], chrome["unparsed_version"]) == (
        15,
        874,
        UA,
    )


def test_repeats_are_logged_once_and_a_new_version_again() -> None:
    eng, sink = engine(http_software=True)
    browse(eng, "", "Server: Apache/2.2\r\n")
    browse(eng, "", "Server: Apache/2.2\r\n", port=40001)
    browse(eng, "", "Server: Apache/2.4\r\n", port=40002)
    eng.finish()
    assert [r["unparsed_version"] for r in sink.rows("software")] == ["Apache/2.2", "Apache/2.4"]


def test_asset_tracking_and_the_ignored_user_agent() -> None:
    eng, sink = engine(http_software=True, asset_tracking="REMOTE_HOSTS")
    browse(eng, f"User-Agent: {UA}\r\n", "Server: Apache\r\n")  # both hosts are local
    eng.finish()
    assert sink.rows("software") == []
    eng, sink = engine(http_software=True)
    browse(eng, "User-Agent: NO_DEFAULT agent/1.0\r\n", "")
    eng.finish()
    assert sink.rows("software") == []
    with pytest.raises(ValueError, match="asset_tracking"):
        SoftwareConfig(asset_tracking="MY_HOSTS")


def test_flash_plugin_after_the_request_with_the_adobeair_prefix() -> None:
    eng, sink = engine(browser_plugins=True)  # the plugin script alone logs no browser
    browse(eng, "User-Agent: Foo AdobeAIR/2.6\r\nX-Flash-Version: 10,2,159,1\r\n", "")
    browse(eng, "X-Requested-With: ShockwaveFlash/11.1.102.55\r\n", "", port=40001)
    eng.finish()
    rows = sink.rows("software")
    assert [(r["software_type"], r["name"], r["unparsed_version"]) for r in rows] == [
        ("HTTP::BROWSER_PLUGIN", "AdobeAIR-Flash", "AdobeAIR-Flash/10,2,159,1"),
        ("HTTP::BROWSER_PLUGIN", "ShockwaveFlash", "ShockwaveFlash/11.1.102.55"),
    ]


@pytest.mark.timeout(300)
def test_flash_version_case_matches_zeek(shared, tmp_path) -> None:
    import importlib.util

    case = shared / "zeek-ref" / "cases" / "scripts.policy.protocols.http.flash-version"
    cmd = [
        sys.executable, "-m", "wirestream", "analyze", str(case / "flash-version.pcap"),
        "--out", str(tmp_path), "-b", str(case / "test.zeek"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    spec = importlib.util.spec_from_file_location(
        "zeek_compare", shared / "tools" / "zeek_compare.py"
    )
    assert spec is not None and spec.loader is not None
    zc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zc)
    rows = zc.compare_dirs(case / "baseline", tmp_path, only={"software"})["software.log"]
    assert rows["exact"] == rows["base_rows"] == 3, rows
