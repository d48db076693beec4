"""Warren's code-interpreter server: what the `e2b-code-interpreter` SDKs
call on port 49999, in front of Jupyter kernels driven with jupyter_client.

Protocol (JSON over HTTP/1.1):
- POST /execute {code, context_id?, language?, env_vars?}: runs the code in
  the context, or in the default context of the language (default Python),
  and answers a stream of JSON lines, each with a "type": "stdout"/"stderr"
  {text, timestamp}, "result" {text, html, markdown, svg, png, jpeg, pdf,
  latex, json, javascript, data, chart, extra, is_main_result}, "error"
  {name, value, traceback}, "number_of_executions" {execution_count},
  "keepalive" (each second without output), and last "end_of_execution".
  A client that goes away (its timeout passed) interrupts the kernel; the
  context keeps its state.
- POST /contexts {language?, cwd?} -> {id, language, cwd}; GET /contexts;
  POST /contexts/{id}/restart; DELETE /contexts/{id}. A context is one
  kernel; its state lives until it is restarted or removed.
- GET /health -> 200.

Languages: python (IPython), javascript and typescript (Deno's kernel), bash
(bash_kernel); `js` and `ts` are accepted. The Python default context starts
with the server; the others on first use (a Deno kernel holds ~280 MB, more
than a sandbox's default memory should spend on a language it may never
use). TypeScript's default context is JavaScript's: one Deno kernel runs
both.

Environment: a kernel starts with the server's environment. Before each
execution it is brought up to date with the sandbox's environment, which the
agent keeps in ENV_FILE (so a create's `envs` reach kernels restored from a
template snapshot); `env_vars` of one execution apply to it alone, and the
sandbox's values come back after it. One execution runs at a time per
context (others wait for it).
"""

import json
import os
import queue
import shlex
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jupyter_client import KernelManager

PORT = 49999
ENV_FILE = "/run/warren/env.json"
DEFAULT_CWD = "/home/user" if os.path.isdir("/home/user") else os.getcwd()
KERNELS = {
    "python": "warren-python",
    "javascript": "warren-deno",
    "typescript": "warren-deno",
    "bash": "warren-bash",
}
SHORT_NAMES = {"js": "javascript", "ts": "typescript"}
# Languages whose kernel may publish output after it went idle, and how
# long to wait for the barrier that collects it (see Context._late_output).
LATE_RESULTS = ("javascript", "typescript")
LATE_GRACE = 5
# How long an interrupted execution may take to end before its kernel is
# restarted.
INTERRUPT_GRACE = 5
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
    "e2b/data": "data",
    "e2b/chart": "chart",
}


class Refused(Exception):
    """A request the server cannot serve: (HTTP status, message)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def normalize_language(language):
    if language is None or not str(language).strip():
        return "python"
    language = str(language).strip().lower()
    language = SHORT_NAMES.get(language, language)
    if language not in KERNELS:
        raise Refused(
            400,
            f"language '{language}' is not provided here; "
            f"languages: {', '.join(KERNELS)} (js and ts also accepted)",
        )
    return language


class SandboxEnv:
    """The sandbox's environment from the agent's file, re-read when the
    file changes."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = None
        self.values = {}

    def current(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self.lock:
            if stamp != self.stamp:
                try:
                    with open(self.path) as f:
                        values = json.load(f)
                    if isinstance(values, dict):
                        self.values = {str(k): str(v) for k, v in values.items()}
                    self.stamp = stamp
                except (OSError, ValueError):
                    pass
            return dict(self.values)


def env_code(language, set_vars, unset_vars):
    """Code that sets and unsets environment variables in a kernel."""
    if language == "python":
        return (
            "import os as _w_os\n"
            f"_w_os.environ.update({set_vars!r})\n"
            f"for _w_k in {sorted(unset_vars)!r}:\n"
            "    _w_os.environ.pop(_w_k, None)\n"
            "del _w_os"
        )
    if language in ("javascript", "typescript"):
        return (
            "{\n"
            f"for (const [k, v] of Object.entries({json.dumps(set_vars)})) Deno.env.set(k, v);\n"
            f"for (const k of {json.dumps(sorted(unset_vars))}) Deno.env.delete(k);\n"
            "}"
        )
    lines = [f"export {k}={shlex.quote(v)}" for k, v in set_vars.items() if k.isidentifier()]
    lines += [f"unset {k}" for k in sorted(unset_vars) if k.isidentifier()]
    return "\n".join(lines) or ":"


def clean_text(text):
    """E2B's SDKs show a result's plain text without the quotes of a string
    repr ('x' or "x")."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


class Context:
    def __init__(self, language, cwd, sandbox_env):
        self.id = uuid.uuid4().hex
        self.language = language
        self.cwd = cwd
        self.sandbox_env = sandbox_env
        self.lock = threading.Lock()
        self.manager = KernelManager(kernel_name=KERNELS[language])
        self.manager.start_kernel(cwd=cwd)
        self._connect()

    def _connect(self):
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.applied = {}

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
        """Runs code without output or history, and waits for it."""
        self.client.execute(code, silent=True, store_history=False, reply=True, timeout=30)

    def _set_env(self, set_vars, unset_vars):
        if set_vars or unset_vars:
            self._quiet(env_code(self.language, set_vars, unset_vars))

    def _sync_sandbox_env(self):
        want = self.sandbox_env.current()
        changed = {k: v for k, v in want.items() if self.applied.get(k) != v}
        gone = set(self.applied) - set(want)
        self._set_env(changed, gone)
        self.applied = want

    def execute(self, code, env_vars, emit):
        """Runs `code`, passing each output to `emit` (which raises when the
        client is gone: the kernel is then interrupted)."""
        with self.lock:
            if not self.manager.is_alive():
                self._restart()
            self._sync_sandbox_env()
            env_vars = {str(k): str(v) for k, v in (env_vars or {}).items()}
            self._set_env(env_vars, set())
            try:
                self._run(code, emit)
            finally:
                if env_vars and self.manager.is_alive():
                    back = {k: self.applied[k] for k in env_vars if k in self.applied}
                    self._set_env(back, set(env_vars) - set(back))

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
                            self._sync_sandbox_env()
                            return self._run(code, emit, retried=True)
                        emit({"type": "error", "name": "KernelDied",
                              "value": "the kernel died; the context was restarted",
                              "traceback": ""})
                        self._restart()
                        return
                    emit({"type": "keepalive"})
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                seen = True
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    emit({"type": content["name"], "text": content["text"],
                          "timestamp": time.time_ns()})
                elif kind in ("execute_result", "display_data"):
                    emit(result_line(content["data"], kind == "execute_result"))
                elif kind == "error":
                    emit({"type": "error", "name": content["ename"],
                          "value": content["evalue"],
                          "traceback": "\n".join(content["traceback"])})
                elif kind == "execute_input":
                    emit({"type": "number_of_executions",
                          "execution_count": content["execution_count"]})
                elif kind == "status" and content["execution_state"] == "idle":
                    if self.language in LATE_RESULTS:
                        self._late_output(msg_id, emit)
                    return
        except (BrokenPipeError, ConnectionResetError):
            self.manager.interrupt_kernel()
            if not self._drain(msg_id):
                # Deaf to interrupts (Deno's kernel in a busy loop): a
                # fresh kernel is better than a context stuck for good.
                self._restart()
            raise

    def _late_output(self, msg_id, emit):
        """Deno's kernel may publish a cell's value (or output) just after
        it reported itself idle. A silent, empty execution is a barrier:
        once it is idle, whatever the cell published has arrived."""
        barrier = self.client.execute("", silent=True, store_history=False)
        deadline = time.monotonic() + LATE_GRACE
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            parent = msg["parent_header"].get("msg_id")
            kind, content = msg["msg_type"], msg["content"]
            if parent == barrier and kind == "status" and content["execution_state"] == "idle":
                return
            if parent != msg_id:
                continue
            if kind == "stream":
                emit({"type": content["name"], "text": content["text"],
                      "timestamp": time.time_ns()})
            elif kind in ("execute_result", "display_data"):
                emit(result_line(content["data"], kind == "execute_result"))

    def _drain(self, msg_id, limit=INTERRUPT_GRACE):
        """Waits (at most `limit` seconds) for the interrupted execution to
        end, so the next one starts on a kernel that is idle. True if it
        ended."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                if not self.manager.is_alive():
                    return False
                continue
            if (msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"]["execution_state"] == "idle"):
                return True
        return False


def result_line(data, is_main):
    line = {"type": "result", "is_main_result": is_main}
    extra = {}
    for mime, value in data.items():
        field = MIME.get(mime)
        if field is None:
            extra[mime] = value
        elif field == "text":
            line["text"] = clean_text(value)
        else:
            line[field] = value
    if extra:
        line["extra"] = extra
    return line


class Contexts:
    def __init__(self, sandbox_env):
        self.sandbox_env = sandbox_env
        self.lock = threading.Lock()
        self.by_id = {}
        self.defaults = {}
        self.starting = {language: threading.Lock() for language in KERNELS}

    def create(self, language, cwd):
        ctx = Context(normalize_language(language), cwd or DEFAULT_CWD, self.sandbox_env)
        with self.lock:
            self.by_id[ctx.id] = ctx
        return ctx

    def default(self, language):
        """The language's default context, started on first use.
        TypeScript shares JavaScript's (one Deno kernel runs both)."""
        language = normalize_language(language)
        if language == "typescript":
            language = "javascript"
        with self.starting[language]:
            with self.lock:
                ctx = self.by_id.get(self.defaults.get(language))
            if ctx is None:
                ctx = self.create(language, DEFAULT_CWD)
                with self.lock:
                    self.defaults[language] = ctx.id
            return ctx

    def get(self, context_id):
        with self.lock:
            ctx = self.by_id.get(context_id)
        if ctx is None:
            raise Refused(404, f"context {context_id} not found")
        return ctx

    def remove(self, context_id):
        with self.lock:
            ctx = self.by_id.pop(context_id, None)
        if ctx is None:
            raise Refused(404, f"context {context_id} not found")
        ctx.shutdown()

    def all(self):
        with self.lock:
            return list(self.by_id.values())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each output line is its own small write: with Nagle's algorithm the
    # second would wait for the peer's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    contexts = None

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise Refused(400, f"the body is not JSON: {e}")
        if not isinstance(body, dict):
            raise Refused(400, "the body must be a JSON object")
        return body

    def _json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, route):
        try:
            route()
        except Refused as e:
            self._json(e.status, {"error": str(e)})
        except Exception as e:
            self._json(500, {"error": f"the code interpreter failed: {e}"})

    def do_GET(self):
        self._serve(self._get)

    def do_POST(self):
        self._serve(self._post)

    def do_DELETE(self):
        self._serve(self._delete)

    def _get(self):
        if self.path == "/health":
            return self._json(200, "ok")
        if self.path == "/contexts":
            return self._json(200, [c.describe() for c in self.contexts.all()])
        raise Refused(404, f"no route {self.path}")

    def _delete(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "contexts":
            raise Refused(404, f"no route {self.path}")
        self.contexts.remove(parts[1])
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _post(self):
        body = self._body()
        parts = self.path.strip("/").split("/")
        if parts == ["execute"]:
            return self._execute(body)
        if parts == ["contexts"]:
            ctx = self.contexts.create(body.get("language"), body.get("cwd"))
            return self._json(200, ctx.describe())
        if len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart":
            ctx = self.contexts.get(parts[1])
            ctx.restart()
            return self._json(200, ctx.describe())
        raise Refused(404, f"no route {self.path}")

    def _execute(self, body):
        code = body.get("code")
        if not isinstance(code, str):
            raise Refused(400, "'code' must be a string")
        context_id, language = body.get("context_id"), body.get("language")
        if context_id and language:
            raise Refused(400, "give context_id or language, not both")
        env_vars = body.get("env_vars") or {}
        if not isinstance(env_vars, dict):
            raise Refused(400, "'env_vars' must be an object")
        ctx = self.contexts.get(context_id) if context_id else self.contexts.default(language)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(line):
            data = json.dumps(line).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        try:
            try:
                ctx.execute(code, env_vars, emit)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as e:
                emit({"type": "error", "name": type(e).__name__,
                      "value": f"the code interpreter failed: {e}", "traceback": ""})
            emit({"type": "end_of_execution"})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main():
    os.chdir(DEFAULT_CWD)
    contexts = Contexts(SandboxEnv(ENV_FILE))
    contexts.default("python")
    Handler.contexts = contexts
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    print(f"code interpreter listening on {PORT}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
