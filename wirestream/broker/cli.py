"""``wirestream kafka``: run the project's own Kafka broker (single node or 3-node cluster)."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from wirestream.broker import BrokerError
from wirestream.broker.layout import Mode
from wirestream.config import Settings

CLUSTER_HELP = "The 3-node cluster (RF 3, min ISR 2) instead of the single node."


def _settings(ctx: click.Context, port: int | None = None) -> Settings:
    from wirestream.cli import settings_of

    settings = settings_of(ctx)
    return settings.with_overrides(kafka_port=port) if port is not None else settings


def _mode(cluster: bool) -> Mode:
    return "cluster" if cluster else "single"


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group("kafka")
def kafka() -> None:
    """Run a local Apache Kafka broker from Maven Central jars (needs Java 17+ and Maven)."""


@kafka.command("up")
@click.option("--cluster", is_flag=True, help=CLUSTER_HELP)
@click.option(
    "--port",
    type=int,
    default=None,
    help="Base port: the first broker listener (default: kafka_port setting, 19092).",
)
@click.option(
    "--timeout", type=float, default=None, help="Seconds to wait for the broker to answer."
)
@click.pass_context
def up_cmd(ctx: click.Context, cluster: bool, port: int | None, timeout: float | None) -> None:
    """Start the broker (fetching jars and formatting storage the first time) and wait for it."""
    from wirestream.broker.runtime import up

    try:
        result = up(_settings(ctx, port), _mode(cluster), timeout_s=timeout)
    except (BrokerError, ValueError) as exc:
        _fail(exc)
    status = result.status
    if result.already_running:
        click.echo(f"Kafka {status.mode} broker already running at {status.bootstrap}")
    else:
        rss = sum(n.rss_mib or 0 for n in status.nodes)
        click.echo(
            f"Kafka {status.mode} broker up at {status.bootstrap} "
            f"({status.brokers} broker(s), started in {result.seconds:.1f}s, RSS {rss:.0f} MiB)"
        )
    click.echo(f"bootstrap servers: {status.bootstrap}")


@kafka.command("down")
@click.option("--cluster", is_flag=True, help=CLUSTER_HELP)
@click.option("--purge", is_flag=True, help="Also delete the broker's data, configs and logs.")
@click.pass_context
def down_cmd(ctx: click.Context, cluster: bool, purge: bool) -> None:
    """Stop the broker (SIGTERM, then SIGKILL after a timeout)."""
    from wirestream.broker.runtime import down

    mode = _mode(cluster)
    try:
        stopped = down(_settings(ctx), mode, purge=purge)
    except (BrokerError, ValueError) as exc:
        _fail(exc)
    if stopped:
        click.echo(f"stopped Kafka {mode} node(s) {', '.join(map(str, stopped))}")
    else:
        click.echo(f"Kafka {mode} broker was not running")
    if purge:
        click.echo(f"removed the {mode} broker's data")


@kafka.command("status")
@click.option("--cluster", is_flag=True, help=CLUSTER_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status_cmd(ctx: click.Context, cluster: bool, as_json: bool) -> None:
    """Show each node (pid, ports, answering, memory, data dir, log); exit 1 unless fully up."""
    from wirestream.broker.runtime import status

    try:
        current = status(_settings(ctx), _mode(cluster))
    except (BrokerError, ValueError) as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(current.as_dict(), indent=2))
    else:
        state = "running" if current.running else "DOWN" if not current.any_alive else "DEGRADED"
        click.echo(
            f"Kafka {current.mode} broker: {state}; bootstrap {current.bootstrap}; "
            f"{current.brokers} broker(s) registered; cluster id {current.cluster_id or '-'}"
        )
        for n in current.nodes:
            rss = f"{n.rss_mib:.0f} MiB" if n.rss_mib is not None else "-"
            click.echo(
                f"  node {n.node_id}: pid {n.pid or '-'} "
                f"{'alive' if n.alive else 'stopped'}, port {n.broker_port} "
                f"{'answering' if n.answering else 'not answering'} "
                f"(controller {n.controller_port}), RSS {rss}\n"
                f"          data {n.data_dir}\n          log  {n.log_file}"
            )
    sys.exit(0 if current.running else 1)


@kafka.command("fetch")
@click.option("--force", is_flag=True, help="Download again even when the jars are cached.")
@click.pass_context
def fetch_cmd(ctx: click.Context, force: bool) -> None:
    """Only download the broker's jars (kafka_version setting) into the cache."""
    from wirestream.broker.fetch import fetch_kafka_jars

    settings = _settings(ctx)
    try:
        libs = fetch_kafka_jars(settings, force=force)
    except BrokerError as exc:
        _fail(exc)
    jars = len(list(libs.glob("*.jar")))
    click.echo(f"Kafka {settings.kafka_version}: {jars} jars in {libs}")
