"""Times the same flows through the E2B SDK and through Warren's native API,
from one Python process (same client runtime, same connection reuse), and
prints the samples in milliseconds as JSON. Run by `warren-bench e2b`.

Flows:
- round: create -> run `echo hi` -> kill, interleaved SDK/native per run;
- run: `echo hi` in one live sandbox, SDK block then native block.

The SDK runs commands as `/bin/bash -l -c CMD`; the native flow execs the
same argv, so both sides do the same work inside the sandbox.
"""

import argparse
import json
import os
import time

import httpx
from e2b import Sandbox

ARGV = ["/bin/bash", "-l", "-c", "echo hi"]


class Native:
    def __init__(self, url, key, template):
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        self.template = template

    def create(self):
        r = self.http.post(
            "/v1/sandboxes", json={"template": self.template, "timeout_s": 600}
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def run(self, sid):
        r = self.http.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": ARGV})
        lines = [json.loads(l) for l in r.text.splitlines() if l.strip()]
        end = lines[-1]
        assert end["type"] == "exit" and end["exit_code"] == 0, r.text

    def kill(self, sid):
        assert self.http.delete(f"/v1/sandboxes/{sid}").status_code == 204


def ms(t0):
    return (time.perf_counter() - t0) * 1000.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--creates", type=int, default=20)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--template", default="base")
    a = p.parse_args()
    native = Native(os.environ["WARREN_URL"], os.environ["WARREN_KEY"], a.template)
    out = {"sdk_round": [], "native_round": [], "sdk_run": [], "native_run": []}

    # Warm both paths once (imports, connection pools).
    s = Sandbox.create(a.template, timeout=600)
    s.commands.run("echo hi")
    s.kill()
    sid = native.create()
    native.run(sid)
    native.kill(sid)

    for _ in range(a.creates):
        t0 = time.perf_counter()
        s = Sandbox.create(a.template, timeout=600)
        assert s.commands.run("echo hi").stdout == "hi\n"
        s.kill()
        out["sdk_round"].append(ms(t0))

        t0 = time.perf_counter()
        sid = native.create()
        native.run(sid)
        native.kill(sid)
        out["native_round"].append(ms(t0))

    s = Sandbox.create(a.template, timeout=600)
    for _ in range(a.runs):
        t0 = time.perf_counter()
        s.commands.run("echo hi")
        out["sdk_run"].append(ms(t0))
    s.kill()
    sid = native.create()
    for _ in range(a.runs):
        t0 = time.perf_counter()
        native.run(sid)
        out["native_run"].append(ms(t0))
    native.kill(sid)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
