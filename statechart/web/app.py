"""The Flask app of ``statechart serve``: the page, its script, and a small JSON API.

API (all JSON; POSTs need the header ``X-Statechart: 1``)::

    GET  /api/config                      what this server offers (store, allow_send, load problems)
    GET  /api/machines                    machines and versions loaded from the folder
    GET  /api/machines/<name>/<version>   one machine's diagram, nothing highlighted
    POST /api/sessions                    {machine, version?, data?} -> a new simulator session
    GET  /api/sessions/<id>               the session: configuration, data, timers, last step, svg
    GET  /api/sessions/<id>/snapshot      its snapshot (JSON), for `statechart render --snapshot`
    POST /api/sessions/<id>/send          {event, data?}
    POST /api/sessions/<id>/advance       {by: "30m"} or {next: true}
    POST /api/sessions/<id>/back          undo the last start/send/advance
    GET  /api/instances?machine=NAME      stored instances (with --store)
    GET  /api/instances/<id>              one stored instance, with its diagram
    GET  /api/instances/<id>/audit        its audit trail, oldest first
    GET  /api/instances/<id>/audit/<n>    step n of the trail with the diagram of its configuration
    POST /api/instances/<id>/send         {event, data?}          (only with --allow-send)
    POST /api/instances                   {machine, version?, id?, data?}  (only with --allow-send)

Safety (see docs/diagrams.md, "statechart serve"): the server binds 127.0.0.1 unless told
otherwise and then answers only requests addressed to a loopback host name (no DNS rebinding);
a POST without the custom header is refused, and a cross-site page cannot add that header
without a CORS preflight this app never approves; request bodies are limited to
``MAX_BODY_BYTES``; machines are chosen by (name, version) among those loaded at start-up, never
by path; the page loads nothing from the network and its Content-Security-Policy forbids inline
scripts, so text from a machine file shown on the page cannot run.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from ..errors import InstanceNotFoundError, MachineNotLoadedError, StatechartError
from .catalog import Catalog, UnknownMachineError
from .diagram import DiagramCache
from .replay import ReadOnlyError, StoreView
from .simulator import SessionNotFoundError, Sessions

__all__ = ["create_app", "threaded_server", "CSRF_HEADER", "MAX_BODY_BYTES", "LOOPBACK_NAMES"]

CSRF_HEADER = "X-Statechart"
MAX_BODY_BYTES = 64 * 1024
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class ApiError(Exception):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status(error: StatechartError) -> int:
    if isinstance(error, (UnknownMachineError, SessionNotFoundError, InstanceNotFoundError)):
        return 404
    if isinstance(error, ReadOnlyError):
        return 403
    if isinstance(error, MachineNotLoadedError):
        return 409
    return 422


def _body() -> dict[str, Any]:
    """The request's JSON object; a clear 400 for anything else (deep nesting included)."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        detail = f"{error.msg} (at character {error.pos})" if isinstance(error, json.JSONDecodeError) else \
            "nested too deeply"
        raise ApiError(400, f"the request body is not valid JSON: {detail}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "the request body must be a JSON object, like {\"event\": \"ADD\"}")
    return value


def _version(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ApiError(400, f"version must be a whole number, not {value!r}")
    return int(value)


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(catalog: Catalog, *, store_url: str | None = None, allow_send: bool = False,
               loopback_only: bool = True, sessions: Sessions | None = None,
               diagrams: DiagramCache | None = None) -> Flask:
    """The app over the machines of ``catalog`` (and the store at ``store_url``, if any).

    ``loopback_only`` (the default, for a server bound to 127.0.0.1) refuses requests whose Host
    header is not a loopback name; a server bound to another address passes False.
    """
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    sessions = sessions or Sessions()
    diagrams = diagrams or DiagramCache()
    store = StoreView(store_url, catalog, allow_send=allow_send) if store_url else None
    app.extensions["statechart"] = {"catalog": catalog, "sessions": sessions, "diagrams": diagrams, "store": store}

    def need_store() -> StoreView:
        if store is None:
            raise ApiError(404, "this server has no store: start it with `statechart serve --store URL`")
        return store

    @app.before_request
    def guard() -> Any:
        if loopback_only and _host_name(request.host) not in LOOPBACK_NAMES:
            raise ApiError(403, f"requests must be addressed to 127.0.0.1 or localhost, not {request.host!r} "
                                "(start serve with --host to listen on another address)")
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.headers.get(CSRF_HEADER) != "1":
            raise ApiError(403, f"a {request.method} needs the header `{CSRF_HEADER}: 1` (the page sends it; "
                                "other sites cannot)")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error=str(error)), error.status

    @app.errorhandler(StatechartError)
    def statechart_error(error: StatechartError) -> tuple[Response, int]:
        return jsonify(error=str(error), type=type(error).__name__), _status(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        message = error.description or error.name
        if error.code == 413:
            message = f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB"
        return jsonify(error=message), error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error=f"unexpected {type(error).__name__}: {error} (the server log has the traceback)"), 500

    # -- the page ------------------------------------------------------------------------------------
    @app.get("/")
    def index() -> Response:
        return app.send_static_file("index.html")

    @app.get("/api/config")
    def config() -> Response:
        return jsonify(folder=catalog.folder, store=store is not None, allow_send=allow_send,
                       problems=list(catalog.problems))

    # -- machines ------------------------------------------------------------------------------------
    @app.get("/api/machines")
    def machines() -> Response:
        listed = []
        for name in catalog.names():
            latest = catalog.get(name)
            listed.append({"name": name, "versions": catalog.versions(name),
                           "description": latest.model.description})
        return jsonify(folder=catalog.folder, machines=listed, problems=list(catalog.problems))

    @app.get("/api/machines/<name>/<int:version>")
    def machine(name: str, version: int) -> Response:
        found = catalog.get(name, version)
        return jsonify(machine=name, version=version, svg=diagrams.svg(found),
                       events=sorted(found.model.events))

    # -- simulator sessions --------------------------------------------------------------------------
    def session_view(session: Any) -> Response:
        view = session.view()
        view["svg"] = diagrams.svg(session.machine, view["configuration"])
        return jsonify(view)

    def with_session(session_id: str, action: Callable[[Any], Any]) -> Response:
        session = sessions.get(session_id)
        with session.lock:
            action(session)
            return session_view(session)

    @app.post("/api/sessions")
    def create_session() -> tuple[Response, int]:
        body = _body()
        name = body.get("machine")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "say which machine: {\"machine\": \"order\", \"version\": 2}")
        session = sessions.create(catalog.get(name, _version(body.get("version"))), body.get("data"))
        with session.lock:
            return session_view(session), 201

    @app.get("/api/sessions/<session_id>")
    def get_session(session_id: str) -> Response:
        return with_session(session_id, lambda session: None)

    @app.get("/api/sessions/<session_id>/snapshot")
    def snapshot(session_id: str) -> Response:
        """The session's snapshot as a file, for `statechart render --snapshot` or Machine.restore."""
        session = sessions.get(session_id)
        with session.lock:
            text = session.instance.snapshot().to_json()
        name = f"{session.machine.name}-v{session.machine.version}-snapshot.json"
        return Response(text, mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/api/sessions/<session_id>/send")
    def send(session_id: str) -> Response:
        body = _body()
        return with_session(session_id, lambda session: session.send(body.get("event"), body.get("data")))

    @app.post("/api/sessions/<session_id>/advance")
    def advance(session_id: str) -> Response:
        body = _body()
        if not body.get("next") and "by" not in body:
            raise ApiError(400, "say how far: {\"by\": \"30m\"} (500ms, 30s, 5m, 2h, 1d) or {\"next\": true}")
        return with_session(session_id, lambda session: session.advance(body.get("by"),
                                                                        to_next=bool(body.get("next"))))

    @app.post("/api/sessions/<session_id>/back")
    def back(session_id: str) -> Response:
        return with_session(session_id, lambda session: session.back())

    # -- stored instances ----------------------------------------------------------------------------
    def drawn(name: str, version: int, configuration: list[str]) -> str | None:
        found = catalog.machines.get((name, version))
        return diagrams.svg(found, configuration) if found is not None else None

    @app.get("/api/instances")
    def instances() -> Response:
        return jsonify(instances=need_store().instances(request.args.get("machine") or None))

    @app.get("/api/instances/<instance_id>")
    def instance(instance_id: str) -> Response:
        summary = need_store().instance(instance_id)
        return jsonify({**summary, "svg": drawn(summary["machine"], summary["version"], summary["configuration"])})

    @app.get("/api/instances/<instance_id>/audit")
    def audit(instance_id: str) -> Response:
        return jsonify(need_store().audit(instance_id))

    @app.get("/api/instances/<instance_id>/audit/<int:step>")
    def audit_step(instance_id: str, step: int) -> Response:
        trail = need_store().audit(instance_id)
        steps = trail["steps"]
        if not 0 <= step < len(steps):
            raise ApiError(404, f"instance {instance_id!r} has {len(steps)} audit rows (steps 0 to "
                                f"{len(steps) - 1}), no step {step}")
        row = steps[step]
        name = trail["instance"]["machine"]
        return jsonify({**row, "count": len(steps), "machine": name,
                        "svg": drawn(name, row["version"], row["configuration_after"])})

    @app.post("/api/instances/<instance_id>/send")
    def instance_send(instance_id: str) -> Response:
        view = need_store()
        if not view.allow_send:
            raise ReadOnlyError("sending an event")
        body = _body()
        receipt = view.send(instance_id, body.get("event"), body.get("data"))
        return jsonify(receipt=receipt, instance=view.instance(instance_id))

    @app.post("/api/instances")
    def instance_create() -> tuple[Response, int]:
        view = need_store()
        if not view.allow_send:
            raise ReadOnlyError("creating an instance")
        body = _body()
        name = body.get("machine")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "say which machine: {\"machine\": \"order\"}")
        created = view.create(name, _version(body.get("version")), body.get("id") or None, body.get("data"))
        return jsonify(created), 201

    return app


def threaded_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A threaded Werkzeug server for ``app`` (``serve_forever()`` runs it, ``shutdown()`` stops it;
    ``.port`` is the port, the one chosen when ``port`` is 0).

    The socket is bound here, so a port in use raises OSError for the caller to report (Werkzeug
    binding it itself would print and ``sys.exit``)."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(128)
        return make_server(host, listener.getsockname()[1], app, threaded=True, fd=listener.fileno())
    finally:
        listener.close()  # the server holds its own duplicate of the socket
