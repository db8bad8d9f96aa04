"""A real HTTP server on 127.0.0.1 for download tests: serves files from a folder, honours Range and
If-Range, redirects ``moved/NAME`` to ``NAME``, records every request, and can drop a connection
part-way through a body."""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Fault:
    """How to misbehave for one file: close the connection after ``drop_after`` body bytes
    (for the next ``drops`` requests; -1 for all), or answer Range requests with the whole file."""

    drop_after: int | None = None
    drops: int = 1
    honour_range: bool = True


@dataclass
class Request:
    path: str
    range: str | None
    if_range: str | None
    status: int = 0
    sent: int = 0


@dataclass
class FileServer:
    root: Path
    faults: dict[str, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)

    @staticmethod
    def etag(data: bytes) -> str:
        return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        files = self.server.files
        name = self.path.lstrip("/")
        record = Request(name, self.headers.get("Range"), self.headers.get("If-Range"))
        files.requests.append(record)
        if name.startswith("moved/"):  # as GitHub and Hugging Face do: a redirect to where the bytes are
            record.status = 302
            self.send_response(302)
            self.send_header("Location", "/" + name.removeprefix("moved/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = files.root / name
        if not path.is_file():
            record.status = 404
            self.send_error(404)
            return
        data = path.read_bytes()
        fault = files.faults.get(name, Fault())
        start, status = 0, 200
        wanted = re.fullmatch(r"bytes=(\d+)-", record.range or "")
        unchanged = record.if_range is None or record.if_range == FileServer.etag(data)
        if wanted and fault.honour_range and unchanged:
            start, status = int(wanted.group(1)), 206
            if start >= len(data):
                record.status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", FileServer.etag(data))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if fault.drop_after is not None and fault.drops != 0:
            fault.drops -= 1
            body = body[: fault.drop_after]  # then the connection closes: a short body
        self.wfile.write(body)
        record.status, record.sent = status, len(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    files: FileServer


def serve(root: Path):
    """Start a server for files in ``root``; returns (FileServer, stop function)."""
    root.mkdir(parents=True, exist_ok=True)
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.files = FileServer(root, port=httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

    return httpd.files, stop
