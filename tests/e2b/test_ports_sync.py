"""Other ports of a sandbox through the same proxy: plain HTTP to a server
the sandbox runs, and an upgraded connection spliced both ways."""

import os
import socket
import time
import urllib.parse

import httpx
from e2b import Sandbox

from conftest import TEMPLATE

ECHO_SERVER = r"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8081))
s.listen()
while True:
    c, _ = s.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        head += c.recv(4096)
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
    while True:
        d = c.recv(4096)
        if not d:
            break
        c.sendall(d.upper())
    c.close()
"""


def headers(sbx, port):
    # An API key of the sandbox's team opens its ports too.
    return {
        "E2b-Sandbox-Id": sbx.sandbox_id,
        "E2b-Sandbox-Port": str(port),
        "X-API-KEY": os.environ["E2B_API_KEY"],
    }


def wait_for(fn, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_http_server_in_the_sandbox(sbx):
    sbx.files.write("/tmp/www/hello.txt", "served from inside")
    sbx.commands.run("python3 -m http.server 8080 --directory /tmp/www", background=True)
    url = os.environ["E2B_SANDBOX_URL"] + "/hello.txt"
    r = wait_for(lambda: httpx.get(url, headers=headers(sbx, 8080)).raise_for_status())
    assert r.text == "served from inside"

    # The traffic token from create opens the sandbox's own servers...
    assert sbx.traffic_access_token
    traffic = {
        "E2b-Sandbox-Id": sbx.sandbox_id,
        "E2b-Sandbox-Port": "8080",
        "E2B-Traffic-Access-Token": sbx.traffic_access_token,
    }
    assert httpx.get(url, headers=traffic).text == "served from inside"
    # ... but not its agent, and a wrong one opens nothing.
    envd = {**traffic, "E2b-Sandbox-Port": "49983"}
    files = os.environ["E2B_SANDBOX_URL"] + "/files?path=/tmp/www/hello.txt"
    assert httpx.get(files, headers=envd).status_code == 401
    wrong = {**traffic, "E2B-Traffic-Access-Token": "nope"}
    assert httpx.get(url, headers=wrong).status_code == 401


def test_get_host_names_the_port_proxy(sbx):
    # get_host() is "{port}-{id}.{domain}" with the domain the daemon
    # answered; sent as Host to the daemon's port, it reaches that port.
    sbx.files.write("/tmp/www2/hello.txt", "by host")
    sbx.commands.run("python3 -m http.server 8082 --directory /tmp/www2", background=True)
    host = sbx.get_host(8082)
    assert host.startswith(f"8082-{sbx.sandbox_id}.")
    assert "e2b" not in host
    url = os.environ["E2B_SANDBOX_URL"] + "/hello.txt"
    token = {"Host": host, "E2B-Traffic-Access-Token": sbx.traffic_access_token}
    r = wait_for(lambda: httpx.get(url, headers=token).raise_for_status())
    assert r.text == "by host"


def test_upgraded_connection_is_spliced(sbx):
    sbx.files.write("/tmp/echo_server.py", ECHO_SERVER)
    sbx.commands.run("python3 /tmp/echo_server.py", background=True)
    base = urllib.parse.urlparse(os.environ["E2B_SANDBOX_URL"])
    request = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
    request += "".join(f"{k}: {v}\r\n" for k, v in headers(sbx, 8081).items()) + "\r\n"

    def connect():
        c = socket.create_connection((base.hostname, base.port), timeout=10)
        c.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            assert chunk, "connection closed before the answer"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        return c

    c = wait_for(connect)
    try:
        for word in (b"hello", b"again"):
            c.sendall(word)
            got = b""
            while len(got) < len(word):
                got += c.recv(4096)
            assert got == word.upper()
    finally:
        c.close()


def test_allow_public_traffic_opens_every_port_without_a_token(run_id):
    # E2B's allowPublicTraffic: true makes the sandbox's ports public; with
    # false (as by default here) each needs the traffic token.
    url = os.environ["E2B_SANDBOX_URL"] + "/hello.txt"
    for public in (True, False):
        sbx = Sandbox.create(
            TEMPLATE,
            metadata={"run": run_id},
            network={"allow_public_traffic": public},
        )
        try:
            sbx.files.write("/tmp/www3/hello.txt", "public" if public else "private")
            sbx.commands.run("python3 -m http.server 8083 --directory /tmp/www3", background=True)
            host = {"Host": sbx.get_host(8083)}
            token = {**host, "E2B-Traffic-Access-Token": sbx.traffic_access_token}
            r = wait_for(lambda: httpx.get(url, headers=token).raise_for_status())
            assert r.text == ("public" if public else "private")
            bare = httpx.get(url, headers=host)
            if public:
                assert bare.status_code == 200 and bare.text == "public"
            else:
                assert bare.status_code == 403
        finally:
            sbx.kill()
        # As on E2B: a killed sandbox's port answers 502, whoever asks.
        gone = httpx.get(url, headers=host)
        assert gone.status_code == 502
        assert gone.json() == {
            "code": 502,
            "message": "The sandbox was not found",
            "sandboxId": sbx.sandbox_id,
        }


HEADER_ECHO = r"""
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = "".join(k + ": " + v + "\n" for k, v in self.headers.items()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("", 8084), H).serve_forever()
"""


def test_header_names_reach_the_sandbox_title_cased(sbx):
    # A server reading raw header names sees `Host`, as behind E2B's proxy,
    # whatever case the client used.
    sbx.files.write("/tmp/header_echo.py", HEADER_ECHO)
    sbx.commands.run("python3 /tmp/header_echo.py", background=True)
    url = os.environ["E2B_SANDBOX_URL"] + "/"
    sent = {**headers(sbx, 8084), "x-lower-case": "1"}
    r = wait_for(lambda: httpx.get(url, headers=sent).raise_for_status())
    names = [line.split(":", 1)[0] for line in r.text.splitlines()]
    assert "Host" in names and "X-Lower-Case" in names, names
