"""Creating and checking the pipeline's topics with explicit partitions, replication and configs.

Topics are never left to broker auto-creation: a log topic made that way would get the
broker's time-based retention and delete records whose (capture-time) timestamps are old.
:func:`ensure_topics` creates what is missing from :mod:`wirestream.topics` specs and checks what
exists; a mismatch is an error (partition counts and replication cannot be fixed silently),
except that topic configs can be aligned on request.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import click
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)

from wirestream.cli import settings_of
from wirestream.config import Settings
from wirestream.kafka import KafkaUnreachable, make_admin, resolve_bootstrap
from wirestream.topics import TopicSpec, log_of_topic, log_topic_spec, system_topic_specs

log = logging.getLogger(__name__)

TIMEOUT_S = 60.0
CREATED, EXISTS, CONFIGS_UPDATED = "created", "exists", "configs-updated"


class TopicError(RuntimeError):
    """Topics cannot be created as specified, or existing ones differ from their spec."""


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    replication: int  # replicas of the least-replicated partition
    min_in_sync: int  # in-sync replicas of the least-synced partition
    configs: dict[str, str]  # topic-level overrides (not broker defaults)


def all_topic_specs(settings: Settings) -> list[TopicSpec]:
    """A topic per Zeek log (every log in the bundled schemas) plus the system topics."""
    from wirestream.schemas.zeek_types import zeek_log_schemas

    logs = sorted(zeek_log_schemas())
    return [log_topic_spec(name, settings) for name in logs] + system_topic_specs(settings)


def _admin(settings: Settings) -> AdminClient:
    """An admin client on a broker that answers; TopicError (naming the address) otherwise."""
    try:
        return make_admin(resolve_bootstrap(settings))
    except KafkaUnreachable as exc:
        raise TopicError(str(exc)) from exc


def _metadata(admin: AdminClient, timeout_s: float) -> ClusterMetadata:
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise TopicError(f"cannot reach Kafka for topic metadata: {exc}") from exc


def _topic_configs(
    admin: AdminClient, names: Iterable[str], timeout_s: float, *, skip_deleted: bool = False
) -> dict[str, dict[str, ConfigEntry]]:
    """Configs per topic; with ``skip_deleted``, topics deleted since listing are left out."""
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    if not resources:
        return {}
    futures = admin.describe_configs(resources, request_timeout=timeout_s)
    configs = {}
    for res, fut in futures.items():
        try:
            configs[res.name] = fut.result()
        except KafkaException as exc:
            err = exc.args[0]
            gone = isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not (gone and skip_deleted):
                raise TopicError(f"cannot read configs of topic {res.name}: {err}") from exc
    return configs


def _info(metadata: ClusterMetadata, name: str, configs: dict[str, ConfigEntry]) -> TopicInfo:
    parts = metadata.topics[name].partitions.values()
    overrides = {
        key: str(entry.value)
        for key, entry in configs.items()
        if ConfigSource(entry.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG
    }
    return TopicInfo(
        name=name,
        partitions=len(parts),
        replication=min((len(p.replicas) for p in parts), default=0),
        min_in_sync=min((len(p.isrs) for p in parts), default=0),
        configs=dict(sorted(overrides.items())),
    )


def describe_topics(
    settings: Settings,
    names: Iterable[str] | None = None,
    *,
    where: Callable[[str], bool] | None = None,
    timeout_s: float = TIMEOUT_S,
) -> list[TopicInfo]:
    """Partitions, replication, ISR and config overrides of ``names`` (all must exist).

    ``names=None`` means every non-internal topic for which ``where`` (if given) is true;
    topics deleted while being described are then left out.
    """
    admin = _admin(settings)
    metadata = _metadata(admin, timeout_s)
    if names is None:
        listed = (t for t in metadata.topics if not t.startswith("__"))
        wanted = sorted(t for t in listed if where is None or where(t))
    else:
        wanted = list(names)
        absent = [n for n in wanted if n not in metadata.topics]
        if absent:
            raise TopicError(f"no such topic(s): {', '.join(absent)}")
    configs = _topic_configs(admin, wanted, timeout_s, skip_deleted=names is None)
    return [_info(metadata, name, configs[name]) for name in wanted if name in configs]


def _create(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> list[str]:
    """Create ``specs``; returns names that already existed (created concurrently elsewhere)."""
    new = [NewTopic(s.name, s.partitions, s.replication, config=dict(s.config)) for s in specs]
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    raced, failures = [], []
    for name, fut in futures.items():
        try:
            fut.result()
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                raced.append(name)
            else:
                failures.append(f"{name}: {err}")
    if failures:
        raise TopicError("cannot create topic(s):\n  " + "\n  ".join(failures))
    return raced


def _await_visible(admin: AdminClient, names: set[str], timeout_s: float) -> ClusterMetadata:
    """Metadata once every topic in ``names`` shows up with leaders (creation has propagated)."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = _metadata(admin, timeout_s)
        pending = [
            n
            for n in names
            if n not in metadata.topics
            or metadata.topics[n].error is not None
            or any(p.leader < 0 for p in metadata.topics[n].partitions.values())
        ]
        if not pending:
            return metadata
        if time.monotonic() > deadline:
            raise TopicError(f"topics not ready within {timeout_s:.0f}s: {', '.join(pending)}")
        time.sleep(0.2)


def _config_drift(spec: TopicSpec, configs: dict[str, ConfigEntry]) -> dict[str, tuple[str, str]]:
    """``{key: (actual, wanted)}`` for every spec'd config the topic does not have."""
    drift = {}
    for key, wanted in spec.config.items():
        entry = configs.get(key)
        actual = "<unknown>" if entry is None else str(entry.value)
        if actual != str(wanted):
            drift[key] = (actual, str(wanted))
    return drift


def _align_configs(admin: AdminClient, fixes: dict[str, dict[str, str]], timeout_s: float) -> None:
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                for k, v in values.items()
            ],
        )
        for name, values in fixes.items()
    ]
    futures = admin.incremental_alter_configs(resources, request_timeout=timeout_s)
    try:
        for fut in futures.values():
            fut.result()
    except KafkaException as exc:
        raise TopicError(f"cannot update topic configs: {exc}") from exc


def ensure_topics(
    settings: Settings,
    specs: list[TopicSpec],
    *,
    fix_configs: bool = False,
    timeout_s: float = TIMEOUT_S,
) -> dict[str, str]:
    """Create missing topics, check existing ones; returns ``{name: created|exists|configs-updated}``.

    Raises :class:`TopicError` when a topic to create has a replication factor above the live
    brokers, or an existing topic has other partitions, replication or (unless ``fix_configs``) configs.
    Idempotent and safe to run concurrently.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate topic names in specs: {sorted(names)}")
    settings = resolve_bootstrap(settings)
    admin = _admin(settings)
    metadata = _metadata(admin, timeout_s)
    brokers = len(metadata.brokers)
    missing = [s for s in specs if s.name not in metadata.topics]
    # Only topics still to create need that many live brokers: an existing RF-3 topic stays
    # usable (min ISR 2) while one of three brokers is down.
    too_wide = [s for s in missing if s.replication > brokers]
    if too_wide:
        listed = ", ".join(f"{s.name} (RF {s.replication})" for s in too_wide[:5])
        raise TopicError(
            f"replication factor above the {brokers} live broker(s) of {settings.bootstrap_servers}: "
            f"{listed}{' ...' if len(too_wide) > 5 else ''}; lower WIRESTREAM_TOPIC_REPLICATION "
            "or start more brokers (`wirestream kafka up --cluster`)"
        )
    outcome = {s.name: CREATED for s in missing}
    if missing:
        for name in _create(admin, missing, timeout_s):
            outcome.pop(name)
        metadata = _await_visible(admin, set(names), timeout_s)
        log.info("created %d topic(s)", len(outcome))
    existing = [s for s in specs if s.name not in outcome]
    configs = _topic_configs(admin, [s.name for s in existing], timeout_s)
    problems, fixes = [], {}
    for spec in existing:
        info = _info(metadata, spec.name, configs[spec.name])
        if info.partitions != spec.partitions:
            problems.append(f"{spec.name}: {info.partitions} partitions, wanted {spec.partitions}")
        if info.replication != spec.replication:
            problems.append(
                f"{spec.name}: replication {info.replication}, wanted {spec.replication}"
            )
        drift = _config_drift(spec, configs[spec.name])
        if drift and fix_configs:
            fixes[spec.name] = {k: wanted for k, (_, wanted) in drift.items()}
        elif drift:
            shown = ", ".join(f"{k}={a} (wanted {w})" for k, (a, w) in drift.items())
            problems.append(f"{spec.name}: {shown}")
        outcome[spec.name] = EXISTS
    if problems:
        hint = "" if fix_configs else " (configs can be aligned with fix_configs / --fix-configs)"
        raise TopicError(
            "existing topic(s) differ from their spec" + hint + ":\n  " + "\n  ".join(problems)
        )
    if fixes:
        _align_configs(admin, fixes, timeout_s)
        outcome.update({name: CONFIGS_UPDATED for name in fixes})
        log.info("updated configs of %d topic(s)", len(fixes))
    return {name: outcome[name] for name in names}


# ---------------------------------------------------------------------------------------------
# CLI: wirestream topics ...


@click.group("topics")
def topics() -> None:
    """Create and inspect the pipeline's Kafka topics."""


@topics.command("create")
@click.option(
    "--fix-configs", is_flag=True, help="Align configs of existing topics with their spec."
)
@click.pass_context
def create_cmd(ctx: click.Context, fix_configs: bool) -> None:
    """Create a topic per Zeek log plus the system topics (existing ones are checked)."""
    settings = settings_of(ctx)
    specs = all_topic_specs(settings)
    try:
        outcome = ensure_topics(settings, specs, fix_configs=fix_configs)
    except TopicError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    counts = {kind: sum(1 for v in outcome.values() if v == kind) for kind in set(outcome.values())}
    for name, kind in outcome.items():
        if kind != EXISTS:
            click.echo(f"{kind:>15}  {name}")
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    click.echo(f"{len(outcome)} topics: {summary}")


@topics.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every topic, not only wirestream's.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """Partitions, replication factor, in-sync replicas and config overrides of each topic."""
    settings = settings_of(ctx)
    ours = {s.name for s in all_topic_specs(settings)}

    def is_ours(name: str) -> bool:
        return name in ours or log_of_topic(name, settings) is not None

    try:
        infos = describe_topics(settings, where=None if show_all else is_ours)
    except TopicError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    width = max((len(i.name) for i in infos), default=5)
    click.echo(f"{'TOPIC':<{width}}  PARTS  RF  MIN-ISR  CONFIGS")
    for i in infos:
        conf = " ".join(f"{k}={v}" for k, v in i.configs.items())
        click.echo(
            f"{i.name:<{width}}  {i.partitions:>5}  {i.replication:>2}  {i.min_in_sync:>7}  {conf}"
        )
    if not infos:
        click.echo("(no topics; create them with `wirestream topics create`)")
