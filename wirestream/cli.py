"""The ``wirestream`` command: one group, a verb per job; each verb lives beside its code.

Verbs are registered lazily (by import path) so ``wirestream --help`` stays fast and a verb's
heavy dependencies load only when that verb runs.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from wirestream.broker import BrokerError
from wirestream.config import ConfigError, Settings, load_settings
from wirestream.logs import setup_logging

log = logging.getLogger(__name__)

# verb -> "module:attribute" of a click command or group.
VERBS: dict[str, str] = {}


def _user_facing(exc: Exception) -> bool:
    """Errors whose message already says what is wrong (bad settings, no broker, Kafka refused,
    a path that cannot be read or written): shown as one ``Error:`` line instead of a traceback
    (``--log-level DEBUG`` logs it). Kafka's exception class is looked up only when
    confluent_kafka was imported, so this check does not load it."""
    if isinstance(exc, BrokenPipeError):  # output piped into e.g. `head`: not an error to report
        return False
    if isinstance(exc, ConfigError | BrokerError | OSError):
        return True
    kafka = sys.modules.get("confluent_kafka")
    return kafka is not None and isinstance(exc, kafka.KafkaException)


class LazyGroup(click.Group):
    """Verbs imported on first use; known operational errors end as one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not _user_facing(exc):
                raise
            log.debug("%s failed", ctx.info_name, exc_info=True)
            raise click.ClickException(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *VERBS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in VERBS:
            module, attr = VERBS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def register(name: str, target: str) -> None:
    """Add a verb: ``target`` is ``"module.path:click_object"``, imported when the verb runs."""
    VERBS[name] = target


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--bootstrap-servers",
    "-b",
    envvar=None,
    help="Kafka bootstrap servers (default: the local broker).",
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="Settings file (TOML)."
)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING, ERROR.")
@click.version_option(package_name="wirestream")
@click.pass_context
def cli(
    ctx: click.Context,
    bootstrap_servers: str | None,
    config_path: str | None,
    log_level: str | None,
) -> None:
    """Zeek logs from packet captures, streamed through Kafka into DataFrames."""
    import os

    env = dict(os.environ)
    if config_path:
        env["WIRESTREAM_CONFIG"] = config_path
    try:
        settings = load_settings(env, bootstrap_servers=bootstrap_servers, log_level=log_level)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    setup_logging(settings.log_level)
    ctx.obj = settings


def settings_of(ctx: click.Context) -> Settings:
    """The resolved settings of the current command."""
    return ctx.find_root().obj


def main() -> None:
    """Console entry point (``wirestream``)."""
    try:
        cli(prog_name="wirestream")
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


# Add a verb here when its module exists; each target is "module:click_object".
for _verb, _target in {
    "kafka": "wirestream.broker.cli:kafka",
    "topics": "wirestream.admin:topics",
    "schemas": "wirestream.schemas.cli:schemas",
    "convert": "wirestream.schemas.convert_cli:convert",
    "analyze": "wirestream.processors.analyze_cli:analyze",
    "send": "wirestream.processors.pipeline_cli:send_command",
    "process": "wirestream.processors.pipeline_cli:process_command",
    "run": "wirestream.processors.pipeline_cli:run_command",
    "status": "wirestream.processors.pipeline_cli:status_command",
    "files": "wirestream.processors.pipeline_cli:files_command",
    "stats": "wirestream.processors.pipeline_cli:stats_command",
    "report": "wirestream.consumers.report_cli:report",
    "demo": "wirestream.demo:demo",
    "logs": "wirestream.consumers.cli:logs",
}.items():
    register(_verb, _target)
