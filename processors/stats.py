"""Live traffic statistics over the per-log topics (faust), readable through faust's web server.

Tables (per-minute windows in Zeek time, since each record's Kafka timestamp is its ``ts``):

* ``bytes_per_host``: orig+resp payload bytes of finished connections, per originator host;
* ``bytes_per_service``: the same per conn.log ``service`` (``-`` when none was confirmed);
* ``dns_queries``: dns.log requests per query name;
* ``first_seen``: every host (originator or responder) with the ``ts`` it was first seen: the
  "new hosts" view.

Records are re-keyed (faust ``group_by``) by the table key so each table is partitioned by what it
counts. Web views: ``GET /stats/`` returns every table held by this worker as JSON
(``{table: {key: {window_start: value}}}``; ``first_seen`` is ``{host: ts}``), and
``GET /stats/new-hosts/?since=TS`` the hosts first seen after ``ts``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from wirestream import topics
from wirestream.config import Settings

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
# Captures replayed from years ago must not be expired on arrival: keep windows ~100 years.
WINDOW_EXPIRES = timedelta(days=36500)


def conn_bytes(record: dict[str, Any]) -> int:
    """Payload bytes of one conn.log record (unset sizes count as 0)."""
    return int(record.get("orig_bytes") or 0) + int(record.get("resp_bytes") or 0)


def conn_service(record: dict[str, Any]) -> str:
    return record.get("service") or "-"


def hosts_of(record: dict[str, Any]) -> list[str]:
    return [h for h in (record.get("id.orig_h"), record.get("id.resp_h")) if h]


def window_rows(raw: Any) -> dict[str, dict[str, Any]]:
    """A windowed table's stored items as ``{key: {window_start: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    for (key, (start, _end)), value in raw.items():
        out.setdefault(str(key), {})[f"{start:.0f}"] = value
    return out


def make_app(settings: Settings, app_id: str = "wirestream-stats", **conf: Any):
    """The faust stats app: agents over zeek.conn and zeek.dns, tables and web views."""
    import faust
    from wirestream.processors.file_analysis import faust_broker
    from wirestream.schemas import codec
    from wirestream.schemas.store import SchemaStore

    web_port = conf.pop("web_port", 6066)
    app = faust.App(
        settings.topic_prefix + app_id,
        broker=faust_broker(settings),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_enabled=True,
        web_port=web_port,
        processing_guarantee="exactly_once",  # read_committed: no aborted processor output
        **conf,
    )
    store = SchemaStore(settings)

    def decode(value: bytes) -> dict[str, Any] | None:
        try:
            return codec.decode(value, store)
        except Exception as exc:  # noqa: BLE001 - a bad record must not stop the stats
            log.warning("undecodable record skipped: %s", exc)
            return None

    conn_topic = app.topic(topics.log_topic("conn", settings), key_type=bytes, value_type=bytes)
    dns_topic = app.topic(topics.log_topic("dns", settings), key_type=bytes, value_type=bytes)

    def rekeyed(name: str):
        """An internal topic that re-keys the log stream by what a table counts."""
        return app.topic(
            topics.system_topic(name, settings),
            key_type=str,
            value_serializer="json",
            internal=True,
        )

    by_host = rekeyed(topics.STATS_BY_HOST_TOPIC)
    by_service = rekeyed(topics.STATS_BY_SERVICE_TOPIC)
    by_query = rekeyed(topics.STATS_BY_QUERY_TOPIC)
    hosts_topic = rekeyed(topics.STATS_HOSTS_TOPIC)

    def windowed(name: str):
        return (
            app.Table(
                name,
                default=int,
                key_type=str,
                value_type=int,
                partitions=settings.topic_partitions,
            )
            .tumbling(WINDOW_SECONDS, expires=WINDOW_EXPIRES)
            .relative_to_stream()
        )

    bytes_per_host = windowed("bytes_per_host")
    bytes_per_service = windowed("bytes_per_service")
    dns_queries = windowed("dns_queries")
    first_seen = app.Table(
        "first_seen",
        default=None,
        key_type=str,
        value_type=float,
        partitions=settings.topic_partitions,
    )

    @app.agent(conn_topic)
    async def split_conn(stream):  # noqa: ANN001
        async for event in stream.events():
            record = decode(event.value)
            if record is None:
                continue
            ts = event.message.timestamp
            size = conn_bytes(record)
            if record.get("id.orig_h"):
                await by_host.send(key=record["id.orig_h"], value=size, timestamp=ts)
            await by_service.send(key=conn_service(record), value=size, timestamp=ts)
            for host in hosts_of(record):
                await hosts_topic.send(key=host, value=record.get("ts"), timestamp=ts)

    @app.agent(dns_topic)
    async def split_dns(stream):  # noqa: ANN001
        async for event in stream.events():
            record = decode(event.value)
            if record is not None and record.get("query"):
                await by_query.send(key=record["query"], value=1, timestamp=event.message.timestamp)

    @app.agent(by_host)
    async def count_host_bytes(stream):  # noqa: ANN001
        async for host, size in stream.items():
            bytes_per_host[host] += int(size)

    @app.agent(by_service)
    async def count_service_bytes(stream):  # noqa: ANN001
        async for service, size in stream.items():
            bytes_per_service[service] += int(size)

    @app.agent(by_query)
    async def count_queries(stream):  # noqa: ANN001
        async for query, n in stream.items():
            dns_queries[query] += int(n)

    @app.agent(hosts_topic)
    async def note_hosts(stream):  # noqa: ANN001
        async for host, ts in stream.items():
            seen = first_seen.get(host)
            if ts is not None and (seen is None or ts < seen):
                first_seen[host] = float(ts)

    @app.page("/stats/")
    async def all_stats(web, request):  # noqa: ANN001
        return web.json(
            {
                "bytes_per_host": window_rows(bytes_per_host.table.data),
                "bytes_per_service": window_rows(bytes_per_service.table.data),
                "dns_queries": window_rows(dns_queries.table.data),
                "first_seen": dict(first_seen.data.items()),
            }
        )

    @app.page("/stats/new-hosts/")
    async def new_hosts(web, request):  # noqa: ANN001
        since = float(request.query.get("since", "0"))
        return web.json(
            {h: ts for h, ts in first_seen.data.items() if ts is not None and ts > since}
        )

    return app
