"""``wirestream schemas``: list, show, generate and publish the Avro schemas of Zeek logs.

Also runs the small Confluent-compatible Schema Registry (``schemas registry``) for users of the
Confluent wire format who have no registry of their own.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
from wirestream.schemas.avro import avsc_text, bundled_avro_schema, fingerprint
from wirestream.schemas.zeek_types import zeek_log_schemas

from wirestream.cli import settings_of

log = logging.getLogger(__name__)


def _known_logs(logs: tuple[str, ...]) -> list[str]:
    known = zeek_log_schemas()
    unknown = [name for name in logs if name not in known]
    if unknown:
        raise click.BadParameter(
            f"unknown log(s) {', '.join(unknown)}; `wirestream schemas list` shows them",
            param_hint="LOG",
        )
    return list(logs) or sorted(known)


@click.group("schemas")
def schemas() -> None:
    """Avro schemas of Zeek logs: list, show, generate, publish; a Schema Registry."""


@schemas.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """Every Zeek log with its column count and schema fingerprint."""
    rows = [
        {
            "log": name,
            "columns": len(log.columns),
            "fingerprint": fingerprint(bundled_avro_schema(name)),
        }
        for name, log in sorted(zeek_log_schemas().items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['log']:<20} {row['columns']:>3}  {row['fingerprint']}")


@schemas.command("show")
@click.argument("log_or_fingerprint")
@click.pass_context
def show_cmd(ctx: click.Context, log_or_fingerprint: str) -> None:
    """Print the .avsc of a log, or of a fingerprint from the schemas topic (16 hex digits)."""
    if log_or_fingerprint in zeek_log_schemas():
        click.echo(avsc_text(bundled_avro_schema(log_or_fingerprint)), nl=False)
        return
    if len(log_or_fingerprint) == 16 and all(c in "0123456789abcdef" for c in log_or_fingerprint):
        from wirestream.schemas.codec import UnknownSchemaError
        from wirestream.schemas.store import SchemaStore

        from wirestream.kafka import resolve_bootstrap

        with SchemaStore(resolve_bootstrap(settings_of(ctx), start=False)) as store:
            try:
                schema = store.schema(log_or_fingerprint)
            except UnknownSchemaError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo(avsc_text(schema), nl=False)
        return
    raise click.BadParameter(
        f"{log_or_fingerprint!r} is neither a known log nor a fingerprint",
        param_hint="LOG_OR_FINGERPRINT",
    )


@schemas.command("generate")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Zeek field list in log_schemas.json format (default: the bundled one).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default: the package's schemas/avsc).",
)
@click.option("--check", is_flag=True, help="Write nothing; fail if the folder is stale.")
def generate_cmd(source: Path | None, out: Path | None, check: bool) -> None:
    """Regenerate the Avro .avsc file of every Zeek log from Zeek's field lists.

    Same as ``python -m wirestream.schemas.generate``.
    """
    from wirestream.schemas import generate

    argv = [*(["--from", str(source)] if source else []), *(["--out", str(out)] if out else [])]
    code = generate.main([*argv, *(["--check"] if check else [])])
    if code:
        raise click.exceptions.Exit(code)


@schemas.command("publish")
@click.argument("logs", nargs=-1)
@click.option(
    "--registry",
    "to_registry",
    is_flag=True,
    help="Also register each schema under its topic's subject in the Confluent Schema Registry "
    "(schema_registry_url).",
)
@click.pass_context
def publish_cmd(ctx: click.Context, logs: tuple[str, ...], to_registry: bool) -> None:
    """Publish the schemas of LOGS (default: all) to the schemas topic, so consumers resolve them."""
    from wirestream.schemas.store import SchemaStore

    from wirestream.kafka import resolve_bootstrap

    names = _known_logs(logs)  # a misspelt log is reported before any broker is looked for
    settings = resolve_bootstrap(settings_of(ctx))
    registry = None
    if to_registry:
        from wirestream.schemas.registry import ConfluentRegistry

        registry = ConfluentRegistry.from_settings(settings)
    with SchemaStore(settings) as store:
        for name in names:
            schema = bundled_avro_schema(name)
            fp = store.publish(schema)
            extra = f"  id {registry.register_log(schema, settings)}" if registry else ""
            click.echo(f"{name:<20} {fp}{extra}")
    click.echo(f"{len(names)} schema(s) on {store.topic}", err=True)


@schemas.command("registry")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8081,
    show_default=True,
    help="Port (8081 is Confluent's default; 0 picks a free one).",
)
@click.option(
    "--memory",
    is_flag=True,
    help="Keep registrations in memory only (default: on the compacted schemas topic).",
)
@click.pass_context
def registry_cmd(ctx: click.Context, host: str, port: int, memory: bool) -> None:
    """Serve a small Confluent-compatible Schema Registry until interrupted."""
    from wirestream.schemas.registry_server import RegistryState, TopicRegistryState, make_server

    if memory:
        state = RegistryState()
    else:
        from wirestream.kafka import resolve_bootstrap

        state = TopicRegistryState(resolve_bootstrap(settings_of(ctx)))
    server = make_server(state, host, port)
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"schema registry on http://{bound_host}:{bound_port}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
