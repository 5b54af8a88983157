"""A small Confluent-compatible Schema Registry, so the Confluent framing works without one.

Serves the subset of the REST API that producers, consumers, Kafka Connect's and ksqlDB's
Avro converters and confluent-kafka's client use for Avro:

- ``POST /subjects/{subject}/versions``  register (idempotent per subject) -> ``{"id": N, ...}``
- ``GET  /schemas/ids/{id}``             -> ``{"schema": "..."}``
- ``GET  /subjects``                     -> ``["subject", ...]``
- ``GET  /subjects/{subject}/versions``  -> ``[1, 2, ...]``
- ``GET  /subjects/{subject}/versions/{version|latest}``

Ids are global: the same schema (compared as normalized JSON) gets the same id under every
subject, as in Confluent's registry. No compatibility checks, deletes or references.

State lives in memory or on the compacted schemas topic (keys ``confluent/<subject>/<version>``
beside the store's fingerprint keys), read back in full at start. Run one registry per topic
namespace: ids are assigned by the one process that writes them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from fastavro import parse_schema
from fastavro.schema import SchemaParseException
from wirestream.schemas.avro import schema_json

from wirestream.config import Settings

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
REGISTRY_KEY_PREFIX = "confluent/"


@dataclass(frozen=True)
class Registration:
    subject: str
    version: int
    id: int
    schema: str


class RegistryError(Exception):
    """An error the REST API reports as ``{"error_code", "message"}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RegistryState:
    """Subjects, versions and ids in memory; subclasses persist each new registration."""

    def __init__(self, registrations: Iterable[Registration] = ()) -> None:
        self._lock = threading.Lock()
        self._subjects: dict[str, list[Registration]] = {}
        self._schemas: dict[int, str] = {}
        self._ids: dict[str, int] = {}  # normalized schema -> id
        for reg in registrations:
            self._remember(reg)

    def _remember(self, reg: Registration) -> None:
        versions = self._subjects.setdefault(reg.subject, [])
        if any(v.version == reg.version for v in versions):
            return
        versions.append(reg)
        versions.sort(key=lambda v: v.version)
        self._schemas.setdefault(reg.id, reg.schema)
        self._ids.setdefault(_normalize(reg.schema), reg.id)

    def _persist(self, reg: Registration) -> None:
        """Hook for durable state; memory needs nothing."""

    def register(self, subject: str, schema_text: str) -> Registration:
        normal = _normalize(schema_text)
        with self._lock:
            versions = self._subjects.get(subject, [])
            for reg in versions:
                if _normalize(reg.schema) == normal:
                    return reg
            schema_id = self._ids.get(normal) or max(self._schemas, default=0) + 1
            version = (versions[-1].version if versions else 0) + 1
            reg = Registration(subject, version, schema_id, normal)
            self._persist(reg)
            self._remember(reg)
            return reg

    def schema(self, schema_id: int) -> str:
        try:
            return self._schemas[schema_id]
        except KeyError:
            raise RegistryError(404, 40403, f"Schema {schema_id} not found") from None

    def subjects(self) -> list[str]:
        return sorted(self._subjects)

    def versions(self, subject: str) -> list[Registration]:
        try:
            return list(self._subjects[subject])
        except KeyError:
            raise RegistryError(404, 40401, f"Subject '{subject}' not found.") from None

    def version(self, subject: str, version: str) -> Registration:
        versions = self.versions(subject)
        if version == "latest":
            return versions[-1]
        for reg in versions:
            if str(reg.version) == version:
                return reg
        raise RegistryError(404, 40402, f"Version {version} not found.")


def _normalize(schema_text: str) -> str:
    """A registrable Avro schema's normalized text; RegistryError 422 if it is not Avro."""
    try:
        schema = json.loads(schema_text)
        parse_schema(schema)
    except (ValueError, SchemaParseException, TypeError, KeyError) as exc:
        raise RegistryError(422, 42201, f"Invalid schema: {exc}") from None
    return schema_json(schema)


class TopicRegistryState(RegistryState):
    """Registry state kept on the compacted schemas topic, so it survives restarts."""

    def __init__(self, settings: Settings, timeout: float = 15.0) -> None:
        from wirestream.schemas.store import ensure_schemas_topic

        from wirestream.kafka import make_producer

        self.settings = settings
        self.timeout = timeout
        self.topic = ensure_schemas_topic(settings)
        super().__init__(self._read_all())
        self._producer = make_producer(settings, **{"linger.ms": 0})

    def _read_all(self) -> list[Registration]:
        from wirestream.schemas.store import read_topic

        found = []
        for key, value in read_topic(self.settings, self.topic, self.timeout):
            if key and key.startswith(REGISTRY_KEY_PREFIX.encode()) and value:
                found.append(Registration(**json.loads(value)))
        log.info("registry: %d registrations read from %s", len(found), self.topic)
        return found

    def _persist(self, reg: Registration) -> None:
        from confluent_kafka import KafkaException

        errors: list[Any] = []
        self._producer.produce(
            self.topic,
            key=f"{REGISTRY_KEY_PREFIX}{reg.subject}/{reg.version}".encode(),
            value=json.dumps(asdict(reg)).encode(),
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
        if self._producer.flush(self.timeout) or errors:
            raise KafkaException(errors[0] if errors else "registry write timed out")


class _Handler(BaseHTTPRequestHandler):
    state: RegistryState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("registry %s: " + format, self.address_string(), *args)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/") if p]
        try:
            self._send(200, self._answer(method, parts))
        except RegistryError as exc:
            self._send(exc.status, {"error_code": exc.code, "message": exc.message})
        except Exception as exc:  # noqa: BLE001 - report, never kill the server thread
            log.exception("registry request failed")
            self._send(500, {"error_code": 50001, "message": f"Error in the backend: {exc}"})

    def _answer(self, method: str, parts: list[str]) -> Any:
        state = self.state
        if method == "GET" and parts == ["subjects"]:
            return state.subjects()
        if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
            return {"schema": state.schema(_int(parts[2]))}
        if len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions":
            if method == "GET":
                return [reg.version for reg in state.versions(parts[1])]
            if method == "POST":
                request = self._json_body()
                if request.get("schemaType", "AVRO") != "AVRO":
                    raise RegistryError(422, 42201, "only AVRO schemas are supported")
                if request.get("references"):
                    raise RegistryError(422, 42201, "schema references are not supported")
                if not isinstance(request.get("schema"), str):
                    raise RegistryError(422, 42201, "request needs a 'schema' string")
                return asdict(state.register(parts[1], request["schema"]))
        if (
            method == "GET"
            and len(parts) == 4
            and parts[0] == "subjects"
            and parts[2] == "versions"
        ):
            return asdict(state.version(parts[1], parts[3]))
        raise RegistryError(404, 404, f"no such endpoint: {method} {self.path}")

    def _json_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise RegistryError(400, 400, "request body is not JSON") from None
        if not isinstance(body, dict):
            raise RegistryError(400, 400, "request body must be a JSON object")
        return body

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._route("POST")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RegistryError(404, 40403, f"Schema {text} not found") from None


def make_server(
    state: RegistryState, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """An HTTP server answering for ``state`` (port 0 picks a free port: ``server_address``)."""
    handler = type("RegistryHandler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(
    state: RegistryState, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Start a registry in a daemon thread; returns (server, base URL). Stop: ``server.shutdown()``."""
    server = make_server(state, host, port)
    threading.Thread(target=server.serve_forever, name="schema-registry", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host}:{bound_port}"


__all__ = [
    "Registration",
    "RegistryError",
    "RegistryState",
    "TopicRegistryState",
    "make_server",
    "serve_in_thread",
]
