"""The `e2b-code-interpreter` SDK against Warren's `code-interpreter`
template: a Jupyter kernel behind the server on port 49999, started by the
template's start command. Run by the driver with E2B_TEST_TEMPLATE naming
the template (the SDK's default template name is E2B's own)."""

import os

import pytest
from e2b_code_interpreter import Sandbox

TEMPLATE = os.environ.get("E2B_TEST_TEMPLATE", "code-interpreter")


@pytest.fixture(scope="module")
def sbx():
    s = Sandbox.create(TEMPLATE, timeout=300)
    yield s
    s.kill()


def test_state_lives_across_cells(sbx):
    first = sbx.run_code("x = 1")
    assert first.error is None and first.text is None
    assert sbx.run_code("x + 1").text == "2"


def test_output_errors_and_env(sbx):
    seen = []
    ex = sbx.run_code(
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\n'done'",
        on_stdout=lambda m: seen.append(m.line),
    )
    assert ex.logs.stdout == ["out\n"] and ex.logs.stderr == ["err\n"]
    assert seen == ["out\n"]
    assert ex.text == "'done'"

    ex = sbx.run_code("1 / 0")
    assert ex.error is not None
    assert (ex.error.name, ex.error.value) == ("ZeroDivisionError", "division by zero")
    assert "ZeroDivisionError" in ex.error.traceback

    assert sbx.run_code("import os; os.environ['W']", envs={"W": "set"}).text == "'set'"
    assert sbx.run_code("os.environ.get('W')").text is None


def test_contexts_are_separate_kernels(sbx):
    ctx = sbx.create_code_context(cwd="/tmp")
    try:
        assert ctx.cwd == "/tmp"
        assert sbx.run_code("import os; os.getcwd()", context=ctx).text == "'/tmp'"
        assert sbx.run_code("y = 5", context=ctx).error is None
        assert sbx.run_code("y", context=ctx).text == "5"
        missing = sbx.run_code("y")
        assert missing.error is not None and missing.error.name == "NameError"
        assert ctx.id in [c.id for c in sbx.list_code_contexts()]
        sbx.restart_code_context(ctx)
        assert sbx.run_code("y", context=ctx).error.name == "NameError"
    finally:
        sbx.remove_code_context(ctx)
    assert ctx.id not in [c.id for c in sbx.list_code_contexts()]


def test_the_kernel_survives_pause_and_fork(sbx):
    assert sbx.run_code("kept = 41").error is None
    assert sbx.pause() is True
    back = Sandbox.connect(sbx.sandbox_id)
    assert back.run_code("kept + 1").text == "42"
    [branch] = back.fork()
    try:
        assert branch.run_code("kept = 0; kept").text == "0"
        assert back.run_code("kept").text == "41"
    finally:
        branch.kill()
