"""A threaded WSGI server on loopback, quiet about each request: the shell of the fake WeChat."""

from __future__ import annotations

import threading
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # else each answer's body waits 40 ms for the ACK of its head

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LoopbackServer:
    def __init__(self, app: Callable, host: str, port: int, name: str) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
