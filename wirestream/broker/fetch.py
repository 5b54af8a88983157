"""Fetching the broker's runtime jars from Maven Central into a per-version cache.

The cache is ``<home>/kafka/<version>/libs``. Jars are copied into a temporary directory next to
it, a marker file is written last, and the directory is renamed into place, so ``libs`` either
holds a complete classpath or does not exist; a lock keeps concurrent fetches from racing.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

from wirestream.broker import BrokerError
from wirestream.broker.process import file_lock
from wirestream.broker.toolchain import find_java, find_mvn
from wirestream.config import Settings

log = logging.getLogger(__name__)

POM_RESOURCE = "kafka-runtime.pom.xml"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
COMPLETE_MARKER = ".complete"
FETCH_TIMEOUT_S = 900


def kafka_version_dir(settings: Settings) -> Path:
    return settings.home / "kafka" / settings.kafka_version


def libs_dir(settings: Settings) -> Path:
    """Where the classpath of ``settings.kafka_version`` lives once fetched."""
    return kafka_version_dir(settings) / "libs"


def libs_complete(libs: Path) -> bool:
    return (libs / COMPLETE_MARKER).is_file()


def check_supported_version(version: str) -> None:
    """Only Kafka 4.x runs the way this package starts it (KRaft only, log4j2, Java 17)."""
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) < 4:
        raise BrokerError(
            f"kafka_version={version!r} is not supported by the local broker: it runs Kafka 4.x "
            "(KRaft with log4j2); set WIRESTREAM_KAFKA_VERSION to e.g. 4.1.1"
        )


def fetch_kafka_jars(settings: Settings, *, force: bool = False) -> Path:
    """The directory of broker jars for ``settings.kafka_version``, downloading them if needed."""
    check_supported_version(settings.kafka_version)
    target = libs_dir(settings)
    if libs_complete(target) and not force:
        return target
    with file_lock(kafka_version_dir(settings) / ".fetch.lock"):
        if libs_complete(target) and not force:  # another process finished meanwhile
            return target
        java, mvn = find_java(), find_mvn()
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix="libs.", dir=target.parent))
        try:
            _copy_dependencies(settings.kafka_version, staging, mvn, java)
            jars = sorted(p.name for p in staging.glob("*.jar"))
            if not any(j.startswith("kafka_2.13-") for j in jars):
                raise BrokerError(f"Maven finished but no kafka_2.13 jar arrived in {staging}")
            (staging / COMPLETE_MARKER).write_text("\n".join(jars) + "\n")
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        log.info(
            "fetched %d jars of Kafka %s into %s in %.1fs",
            len(jars),
            settings.kafka_version,
            target,
            time.monotonic() - started,
        )
        return target


def _copy_dependencies(version: str, out_dir: Path, mvn: Path, java: Path) -> None:
    """Run Maven's dependency plugin on the packaged pom, in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="wirestream-mvn.") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(resources.files("wirestream.broker").joinpath(POM_RESOURCE).read_text())
        cmd = [
            str(mvn),
            "-B",
            "-q",
            "-f",
            str(pom),
            f"-Dkafka.version={version}",
            DEPENDENCY_PLUGIN,
            f"-DoutputDirectory={out_dir}",
            "-DincludeScope=runtime",
        ]
        env = dict(os.environ)
        jdk_home = java.resolve().parent.parent
        if "JAVA_HOME" not in env and (jdk_home / "release").is_file():
            env["JAVA_HOME"] = str(jdk_home)  # Maven runs on the same (checked) Java
        log.info("fetching Kafka %s jars from Maven Central: %s", version, " ".join(cmd))
        try:
            done = subprocess.run(
                cmd, cwd=work, env=env, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"Maven did not finish within {FETCH_TIMEOUT_S}s: {cmd}") from exc
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
            raise BrokerError(
                f"Maven could not fetch Kafka {version} (exit {done.returncode}); is Maven Central "
                f"reachable and the version right?\n{tail}"
            )
