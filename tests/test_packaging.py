"""A normal wheel holds one package, ``wirestream``, with the data files the code loads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=build,
        timeout=300,
    )
    if (
        result.returncode != 0
        and "No module named" in result.stderr
        and "setuptools" in result.stderr
    ):
        pytest.skip(
            "setuptools is not installed in this environment, so no wheel can be built offline"
        )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("wirestream-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_only_the_wirestream_package_lands_in_site_packages(wheel_names):
    top = {
        name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top == {"wirestream"}


def test_architecture_folders_become_subpackages(wheel_names):
    for package in (
        "producers",
        "processors",
        "consumers",
        "schemas",
        "processors/engine",
        "processors/engine/protocols",
        "broker",
    ):
        assert f"wirestream/{package}/__init__.py" in wheel_names


def test_data_files_are_shipped(wheel_names):
    assert "wirestream/schemas/zeek_log_schemas.json" in wheel_names
    assert "wirestream/schemas/avsc/conn.avsc" in wheel_names
    assert "wirestream/data/demo.pcap" in wheel_names
    assert "wirestream/broker/kafka-runtime.pom.xml" in wheel_names
    assert "wirestream/broker/log4j2.properties" in wheel_names
