"""One source for every setting: defaults < config file < ``WIRESTREAM_*`` environment < flags.

Every Kafka client in the project is built from a :class:`Settings`, so connection and
security settings are decided here once and passed through to librdkafka unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "WIRESTREAM_"
CONFIG_ENV = "WIRESTREAM_CONFIG"
DEFAULT_CONFIG_PATHS = (
    Path("wirestream.toml"),
    Path.home() / ".config" / "wirestream" / "config.toml",
)
# The values a few settings may take, checked when settings are read (not when first used).
ENGINES = ("auto", "builtin", "zeek")
WIRE_FORMATS = ("single-object", "confluent")
_CHOICES: dict[str, tuple[str, ...]] = {"engine": ENGINES, "wire_format": WIRE_FORMATS}
# Inclusive bounds of integer settings (None: unbounded); retention_bytes -1 means unlimited.
_BOUNDS: dict[str, tuple[int, int | None]] = {
    "topic_partitions": (1, None),
    "topic_replication": (1, None),
    "kafka_port": (1, 65535),
    "retention_bytes": (-1, None),
}


class ConfigError(ValueError):
    """A setting is missing, unknown or malformed."""


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``bootstrap_servers`` empty means: use the project's local broker."""

    bootstrap_servers: str = ""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_ca_location: str = ""
    ssl_certificate_location: str = ""
    ssl_key_location: str = ""
    # Extra librdkafka properties, passed through verbatim (e.g. {"socket.keepalive.enable": "true"}).
    kafka_options: Mapping[str, str] = field(default_factory=dict)
    topic_prefix: str = ""
    topic_partitions: int = 3
    topic_replication: int = 1
    # Bytes kept per partition of each log topic; -1 keeps everything (forensic default).
    retention_bytes: int = -1
    schema_registry_url: str = ""
    wire_format: str = "single-object"  # one of WIRE_FORMATS
    home: Path = Path(os.path.expanduser("~/.wirestream"))
    kafka_version: str = "4.1.1"
    kafka_port: int = 19092
    engine: str = "auto"  # one of ENGINES
    zeek_path: str = ""
    sensor: str = "wirestream"
    log_level: str = "INFO"

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values set (flags use this)."""
        clean = {k: v for k, v in values.items() if v is not None}
        return dataclasses.replace(self, **_coerce_all(clean))

    @property
    def uses_local_broker(self) -> bool:
        return not self.bootstrap_servers

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka connection/security properties shared by producers, consumers and admin."""
        if not self.bootstrap_servers:
            raise ConfigError(
                "no bootstrap servers configured (start the local broker or set WIRESTREAM_BOOTSTRAP_SERVERS)"
            )
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({k: v for k, v in optional.items() if v})
        conf.update({str(k): str(v) for k, v in self.kafka_options.items()})
        return conf


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """``value`` (from a file, the environment or a flag) as the setting's type, checked."""
    coerced = _convert(name, value)
    if name in _CHOICES and coerced not in _CHOICES[name]:
        raise ConfigError(f"setting {name}: {coerced!r} is not one of {', '.join(_CHOICES[name])}")
    low, high = _BOUNDS.get(name, (None, None))
    if (low is not None and coerced < low) or (high is not None and coerced > high):
        allowed = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(f"setting {name}: {coerced} is out of range ({allowed})")
    return coerced


def _convert(name: str, value: Any) -> Any:
    if name not in _FIELDS:
        raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(_FIELDS))}")
    kind = type(getattr(Settings(), name))
    try:
        if kind is int:
            return int(value)
        if issubclass(kind, Path):
            return Path(os.path.expanduser(str(value)))
        if name == "kafka_options":
            if isinstance(value, Mapping):
                return {str(k): str(v) for k, v in value.items()}
            pairs = [p for p in str(value).split(",") if p.strip()]
            return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}
    except ValueError as exc:
        raise ConfigError(f"setting {name}: cannot use {value!r}: {exc}") from exc
    return str(value)


def _coerce_all(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _coerce(k, v) for k, v in values.items()}


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    # Allow either top-level keys or a [wirestream] table; [kafka] is librdkafka passthrough.
    tables = sorted(k for k, v in data.items() if isinstance(v, dict))
    unknown = [t for t in tables if t not in ("wirestream", "kafka", "kafka_options")]
    if unknown:
        raise ConfigError(
            f"{path}: unknown table(s) {', '.join(f'[{t}]' for t in unknown)}; "
            "settings go at the top level or under [wirestream], librdkafka properties under [kafka]"
        )
    values = dict(data.get("wirestream", {}))
    values.update({k: v for k, v in data.items() if not isinstance(v, dict)})
    for table in ("kafka_options", "kafka"):  # [kafka_options], as the setting is named, or [kafka]
        if table in data:
            values["kafka_options"] = data[table]
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key != CONFIG_ENV:
            name = key[len(ENV_PREFIX) :].lower()
            if name in _FIELDS:
                values[name] = value
    return values


def config_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file in force: ``$WIRESTREAM_CONFIG``, else the first default path present."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={path}: no such file")
        return path
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


def load_settings(env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Resolve settings: defaults, then the config file, then environment, then flags."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file(env)
    if path is not None:
        values.update(_from_file(path))
    values.update(_from_env(env))
    values.update({k: v for k, v in flags.items() if v is not None})
    return Settings(**_coerce_all(values))
