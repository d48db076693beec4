"""E2B's `Template` builder against Warren, through the official SDK only.

Run by crates/e2e/tests/sandbox_e2b_builds.rs (not collected by pytest: a
build takes a minute). Builds a template from Debian with apt, ENV, COPY,
RUN, WORKDIR and a start command with a ready check, starts a sandbox of
it and checks every effect; then a failing step, a base that cannot be
had and the tag endpoints. Prints one JSON line for the driver.
"""

import json
import pathlib
import sys
import tempfile

from e2b import Sandbox, Template, wait_for_port
from e2b.exceptions import BuildException

NAME = sys.argv[1]


def build(template, name, **kwargs):
    lines = []
    try:
        info = Template.build(template, name, on_build_logs=lambda e: lines.append(str(e)), **kwargs)
        return info, lines
    except Exception:
        print("\n".join(lines), file=sys.stderr)
        raise


ctx = pathlib.Path(tempfile.mkdtemp())
(ctx / "app").mkdir()
(ctx / "app" / "hello.txt").write_text("from the context\n")
(ctx / "app" / "index.html").write_text("<p>served</p>\n")

template = (
    Template(file_context_path=str(ctx))
    .from_debian_image()
    .apt_install(["jq", "iproute2"])
    .set_envs({"GREETING": "hi", "TOOLS": "/opt/tools:$PATH"})
    .copy("app", "/home/user/site/")
    .run_cmd("echo $GREETING > ~/greeting && echo $TOOLS > ~/tools && id -un > ~/who")
    .set_workdir("/home/user/site")
    .set_start_cmd("python3 -m http.server 8000", wait_for_port(8000))
)
info, lines = build(template, f"{NAME}:v1")
assert info.template_id == NAME, info
assert any("apt-get install" in line for line in lines), lines

sbx = Sandbox.create(NAME, timeout=300)
try:
    out = sbx.commands.run(
        "cat ~/greeting ~/tools ~/who site/hello.txt 2>&1; cd ~ && jq -n 1+1;"
        " stat -c %U site/hello.txt",
        cwd="/home/user",
    )
    page = sbx.commands.run("curl -s http://127.0.0.1:8000/index.html")
    started = {"stdout": out.stdout, "page": page.stdout}
finally:
    sbx.kill()

# A failing step names itself; nothing of it becomes the template.
broken = Template().from_template(NAME).run_cmd("echo about to fail && exit 3")
try:
    build(broken, NAME)
    failure = None
except BuildException as e:
    failure = str(e)

# A base that cannot be had here says which can.
try:
    build(Template().from_image("python:3.12-slim").run_cmd("true"), f"{NAME}-py")
    unknown_base = None
except BuildException as e:
    unknown_base = str(e)

tagged = Template.assign_tags(f"{NAME}:v1", ["stable"])
tags = sorted(t.tag for t in Template.get_tags(NAME))
Template.remove_tags(NAME, ["v1"])
after_remove = sorted(t.tag for t in Template.get_tags(NAME))

print(
    json.dumps(
        {
            "started": started,
            "failure": failure,
            "unknown_base": unknown_base,
            "tagged": tagged.tags,
            "tags": tags,
            "after_remove": after_remove,
            "exists": Template.exists(NAME),
            "missing_exists": Template.exists(f"{NAME}-never-built"),
        }
    )
)
