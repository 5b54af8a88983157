"""Maps the top-level architecture folders into the one importable package, ``wirestream``.

``producers/`` becomes ``wirestream.producers`` and so on, so the repository shows the
architecture while site-packages gets a single package and no bare ``producers`` module.
"""

from setuptools import find_packages, setup

FOLDERS = {
    "wirestream": "wirestream",
    "wirestream.producers": "producers",
    "wirestream.processors": "processors",
    "wirestream.consumers": "consumers",
    "wirestream.schemas": "schemas",
}

package_dir: dict[str, str] = {}
packages: list[str] = []
for package, folder in FOLDERS.items():
    package_dir[package] = folder
    packages.append(package)
    for sub in find_packages(folder):
        packages.append(f"{package}.{sub}")
        package_dir[f"{package}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir)
