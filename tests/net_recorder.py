"""A local HTTP server that records every request it gets, used two ways by the tests:

- as HTTP(S)_PROXY for a run that must make no network requests: any outbound attempt by
  the workbench or a library it uses (telemetry, tracing) arrives here as a request or a
  CONNECT, and the test asserts there were none;
- as LANGSMITH_ENDPOINT, to see that LangSmith tracing sends runs when a user turns it on.

Real sockets on 127.0.0.1; it answers 200 with an empty JSON object to everything.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class NetRecorder:
    def __init__(self):
        self.requests: list[tuple[str, str, bytes]] = []  # (method, path, body)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append((self.command, self.path, body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_CONNECT = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "NetRecorder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def proxy_env(self) -> dict:
        """Environment variables that send every outbound HTTP(S) request through here."""
        return {"HTTP_PROXY": self.url, "HTTPS_PROXY": self.url, "http_proxy": self.url, "https_proxy": self.url,
                "ALL_PROXY": self.url, "NO_PROXY": "", "no_proxy": ""}  # fmt: skip
