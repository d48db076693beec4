"""Warren's code-interpreter server: what the `e2b-code-interpreter` SDK
calls on port 49999, in front of Jupyter kernels (ipykernel, driven with
jupyter_client).

Protocol (JSON over HTTP/1.1):
- POST /execute {code, context_id?, language?, env_vars?}: runs the code in
  the context (default: the Python context started with the server) and
  answers a stream of JSON lines, each with a "type": "stdout"/"stderr"
  {text, timestamp}, "result" {text, html, markdown, svg, png, jpeg, pdf,
  latex, json, javascript, is_main_result}, "error" {name, value,
  traceback}, "number_of_executions" {execution_count}, and last
  "end_of_execution". A client that goes away interrupts the kernel.
- POST /contexts {language?, cwd?} -> {id, language, cwd}; GET /contexts;
  POST /contexts/{id}/restart; DELETE /contexts/{id}. A context is one
  kernel; its variables live until it is restarted or deleted.
- GET /health -> 200.

One execution runs at a time per context (others wait for it). Only Python
kernels are provided.
"""

import json
import os
import queue
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jupyter_client import KernelManager

PORT = 49999
DEFAULT_CWD = "/home/user" if os.path.isdir("/home/user") else os.getcwd()
MIME = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}


class Context:
    def __init__(self, language, cwd):
        self.id = uuid.uuid4().hex
        self.language = language
        self.cwd = cwd
        self.lock = threading.Lock()
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=cwd)
        self._connect()

    def _connect(self):
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def describe(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def restart(self):
        with self.lock:
            self._restart()

    def _restart(self):
        self.client.stop_channels()
        self.manager.restart_kernel(now=True)
        self._connect()

    def shutdown(self):
        with self.lock:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=True)

    def _quiet(self, code):
        """Runs code without output or history (environment changes)."""
        self.client.execute(code, silent=True, store_history=False, reply=True)

    def execute(self, code, env_vars, emit):
        """Runs `code`, passing each output line to `emit` (which raises
        when the client is gone: the kernel is then interrupted)."""
        with self.lock:
            if env_vars:
                saved = json.dumps(sorted(env_vars))
                self._quiet(
                    "import os as _w_os, json as _w_json\n"
                    f"_w_saved = {{k: _w_os.environ.get(k) for k in _w_json.loads({saved!r})}}\n"
                    f"_w_os.environ.update(_w_json.loads({json.dumps(json.dumps(env_vars))}))"
                )
            try:
                self._run(code, emit)
            finally:
                if env_vars:
                    self._quiet(
                        "for _w_k, _w_v in _w_saved.items():\n"
                        "    _w_os.environ.pop(_w_k, None) if _w_v is None else _w_os.environ.__setitem__(_w_k, _w_v)\n"
                    )

    def _run(self, code, emit, retried=False):
        msg_id = self.client.execute(code, store_history=True)
        seen = False
        try:
            while True:
                try:
                    msg = self.client.get_iopub_msg(timeout=1)
                except queue.Empty:
                    if not self.manager.is_alive():
                        if not seen and not retried:
                            # Dead before it saw the request (e.g. a kernel
                            # that did not survive a snapshot restore): the
                            # code never ran, so a fresh kernel runs it.
                            self._restart()
                            return self._run(code, emit, retried=True)
                        emit({"type": "error", "name": "KernelDied",
                              "value": "the kernel died", "traceback": ""})
                        return
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                seen = True
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    emit({"type": content["name"], "text": content["text"],
                          "timestamp": time.time_ns()})
                elif kind in ("execute_result", "display_data"):
                    result = {MIME[m]: v for m, v in content["data"].items() if m in MIME}
                    result["type"] = "result"
                    result["is_main_result"] = kind == "execute_result"
                    extra = {m: v for m, v in content["data"].items() if m not in MIME}
                    if extra:
                        result["extra"] = extra
                    emit(result)
                elif kind == "error":
                    emit({"type": "error", "name": content["ename"],
                          "value": content["evalue"],
                          "traceback": "\n".join(content["traceback"])})
                elif kind == "execute_input":
                    emit({"type": "number_of_executions",
                          "execution_count": content["execution_count"]})
                elif kind == "status" and content["execution_state"] == "idle":
                    return
        except BrokenPipeError:
            self.manager.interrupt_kernel()
            raise


class Contexts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_id = {}
        self.default = self.create("python", DEFAULT_CWD)

    def create(self, language, cwd):
        if language not in ("python", None, ""):
            raise ValueError(f"language '{language}' is not provided (only python)")
        ctx = Context("python", cwd or DEFAULT_CWD)
        with self.lock:
            self.by_id[ctx.id] = ctx
        return ctx

    def get(self, context_id):
        with self.lock:
            return self.by_id.get(context_id)

    def remove(self, context_id):
        with self.lock:
            return self.by_id.pop(context_id, None)

    def all(self):
        with self.lock:
            return list(self.by_id.values())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    contexts = None

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def _json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message):
        self._json(status, {"error": message})

    def do_GET(self):
        if self.path == "/health":
            return self._json(200, "ok")
        if self.path == "/contexts":
            return self._json(200, [c.describe() for c in self.contexts.all()])
        self._error(404, f"no route {self.path}")

    def do_DELETE(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "contexts":
            ctx = self.contexts.remove(parts[1])
            if ctx is None:
                return self._error(404, f"context {parts[1]} not found")
            ctx.shutdown()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        self._error(404, f"no route {self.path}")

    def do_POST(self):
        try:
            body = self._body()
        except ValueError as e:
            return self._error(400, f"the body is not JSON: {e}")
        parts = self.path.strip("/").split("/")
        if parts == ["execute"]:
            return self._execute(body)
        if parts == ["contexts"]:
            try:
                ctx = self.contexts.create(body.get("language"), body.get("cwd"))
            except ValueError as e:
                return self._error(400, str(e))
            return self._json(200, ctx.describe())
        if len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart":
            ctx = self.contexts.get(parts[1])
            if ctx is None:
                return self._error(404, f"context {parts[1]} not found")
            ctx.restart()
            return self._json(200, ctx.describe())
        self._error(404, f"no route {self.path}")

    def _execute(self, body):
        code = body.get("code")
        if not isinstance(code, str):
            return self._error(400, "'code' must be a string")
        context_id, language = body.get("context_id"), body.get("language")
        if context_id:
            ctx = self.contexts.get(context_id)
            if ctx is None:
                return self._error(404, f"context {context_id} not found")
        elif language not in (None, "", "python"):
            return self._error(400, f"language '{language}' is not provided (only python)")
        else:
            ctx = self.contexts.default
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(line):
            data = json.dumps(line).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        try:
            ctx.execute(code, body.get("env_vars") or {}, emit)
            emit({"type": "end_of_execution"})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main():
    os.chdir(DEFAULT_CWD)
    Handler.contexts = Contexts()
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    print(f"code interpreter listening on {PORT}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
