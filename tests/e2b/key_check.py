"""One key through the SDK, configured by the environment alone.

`python key_check.py works`: the key creates a sandbox, runs a command in it
and kills it. `python key_check.py refused`: the SDK turns the daemon's
answer into its authentication error, for a create and for a listing.
The driver runs it with E2B_API_KEY set to a key minted in E2B's spelling.
"""

import os
import re
import sys

from e2b import AuthenticationException, Sandbox

TEMPLATE = os.environ.get("E2B_TEST_TEMPLATE", "base")


def works():
    s = Sandbox.create(TEMPLATE, timeout=120)
    try:
        r = s.commands.run("echo minted")
        assert (r.stdout, r.exit_code) == ("minted\n", 0), r
    finally:
        s.kill()


def refused():
    for call in (lambda: Sandbox.create(TEMPLATE, timeout=60), lambda: Sandbox.list().next_items()):
        try:
            call()
        except AuthenticationException:
            continue
        raise AssertionError("a revoked key was accepted")


if __name__ == "__main__":
    # What E2B's SDKs check before sending anything.
    assert re.fullmatch(r"e2b_[0-9a-f]+", os.environ["E2B_API_KEY"])
    {"works": works, "refused": refused}[sys.argv[1]]()
    print(f"key_check {sys.argv[1]}: ok")
