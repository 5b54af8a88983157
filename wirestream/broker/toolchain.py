"""Finding the JVM and Maven the broker needs, and saying what to install when they are missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from wirestream.broker import BrokerError

MIN_JAVA = 17  # Kafka 4.x brokers need Java 17+.
INSTALL_HINT = (
    "install a Java 17 (or newer) runtime and Apache Maven, "
    "e.g. `apt-get install openjdk-17-jre-headless maven` or `brew install openjdk@17 maven`"
)
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def parse_java_major(version_output: str) -> int:
    """Major version from ``java -version`` output: ``"17.0.15"`` -> 17, ``"1.8.0_292"`` -> 8."""
    match = _VERSION.search(version_output)
    if not match:
        raise BrokerError(f"cannot read the Java version from: {version_output.strip()[:200]!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # Java 8 and older report "1.x"
        major = int(match.group(2))
    return major


def find_java() -> Path:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH; checked to be Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not candidate.is_file():
        found = shutil.which("java")
        if found is None:
            where = f"JAVA_HOME={java_home} has no bin/java and " if java_home else ""
            raise BrokerError(
                f"{where}no `java` on PATH: the local Kafka broker needs Java {MIN_JAVA}+; "
                f"{INSTALL_HINT}"
            )
        candidate = Path(found)
    out = subprocess.run(
        [str(candidate), "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    major = parse_java_major(out.stderr + out.stdout)
    if major < MIN_JAVA:
        raise BrokerError(
            f"{candidate} is Java {major}, but Kafka 4 needs Java {MIN_JAVA}+; {INSTALL_HINT} "
            "(or point JAVA_HOME at a newer JDK)"
        )
    return candidate


def find_mvn() -> Path:
    """``mvn`` on PATH, needed only to fetch the broker's jars once."""
    found = shutil.which("mvn")
    if found is None:
        raise BrokerError(
            "no `mvn` on PATH: Maven fetches the Kafka broker's jars from Maven Central "
            f"(needed once per Kafka version); {INSTALL_HINT}"
        )
    return Path(found)
