"""The `e2b-code-interpreter` SDK against Warren, as a new user runs it:
`Sandbox.create()` with the SDK's default template (`code-interpreter-v1`,
an alias of Warren's `code-interpreter`), whose server on port 49999 runs
IPython, Deno (JavaScript, TypeScript) and bash kernels."""

import time

import pytest
from e2b import TimeoutException
from e2b_code_interpreter import Sandbox


@pytest.fixture(scope="module")
def sbx():
    s = Sandbox.create(timeout=300, envs={"FROM_CREATE": "created"})
    yield s
    s.kill()


def test_state_lives_across_cells(sbx):
    first = sbx.run_code("x = 1")
    assert first.error is None and first.text is None
    assert sbx.run_code("x + 1").text == "2"
    assert sbx.run_code("'done'").text == "done"


def test_output_errors_and_env(sbx):
    ex = sbx.run_code("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert ex.logs.stdout == ["out\n"] and ex.logs.stderr == ["err\n"]

    ex = sbx.run_code("1 / 0")
    assert (ex.error.name, ex.error.value) == ("ZeroDivisionError", "division by zero")
    assert "ZeroDivisionError" in ex.error.traceback

    assert sbx.run_code("import os; os.environ['W']", envs={"W": "set"}).text == "set"
    assert sbx.run_code("os.environ.get('W')").text is None
    # The create's envs reach a kernel that started before the create.
    assert sbx.run_code("os.environ['FROM_CREATE']").text == "created"
    over = sbx.run_code("os.environ['FROM_CREATE']", envs={"FROM_CREATE": "over"})
    assert over.text == "over"
    assert sbx.run_code("os.environ['FROM_CREATE']").text == "created"


def test_callbacks_stream_in_order_while_the_cell_runs(sbx):
    seen = []
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)\n7"
    results = []
    errors = []
    started = time.monotonic()
    ex = sbx.run_code(
        code,
        on_stdout=lambda m: seen.append((m.line, time.monotonic() - started)),
        on_result=results.append,
        on_error=errors.append,
    )
    assert [line for line, _ in seen] == ["0\n", "1\n", "2\n"]
    assert seen[0][1] < seen[2][1] - 0.4, "the first line came before the cell ended"
    assert [r.text for r in results] == ["7"] and ex.text == "7"
    sbx.run_code("undefined_name", on_error=errors.append)
    assert [e.name for e in errors] == ["NameError"]


def test_dataframes_come_back_as_html_and_data(sbx):
    ex = sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})")
    [result] = ex.results
    assert "<table" in result.html
    assert result.data == {"a": [1, 2, 3], "b": ["x", "y", "z"]}


def test_plots_come_back_as_png_and_chart_data(sbx):
    ex = sbx.run_code(
        "import matplotlib.pyplot as plt\n"
        "plt.figure()\n"
        "plt.plot([1, 2, 3], [4, 5, 7], label='growth')\n"
        "plt.title('Line')\nplt.xlabel('day')\nplt.ylabel('size')\n"
        "plt.show()"
    )
    assert ex.error is None, ex.error
    [line] = ex.results
    assert line.png and line.text.startswith("<Figure")
    assert line.chart.type.value == "line"
    assert line.chart.title == "Line"
    assert (line.chart.x_label, line.chart.y_label) == ("day", "size")
    [series] = line.chart.elements
    assert series.label == "growth"
    assert [tuple(p) for p in series.points] == [(1, 4), (2, 5), (3, 7)]

    ex = sbx.run_code(
        "plt.figure()\nplt.bar(['a', 'b'], [3, 5])\nplt.title('Bars')\nplt.show()"
    )
    [bars] = ex.results
    assert bars.chart.type.value == "bar"
    assert sorted((b.label, b.value) for b in bars.chart.elements) == [("a", 3), ("b", 5)]


def test_rich_formats(sbx):
    ex = sbx.run_code(
        "from IPython.display import display, HTML, Markdown, Latex\n"
        "display(HTML('<b>bold</b>'))\ndisplay(Markdown('# title'))\n"
        "display(Latex(r'$x^2$'))\n{'k': [1, 2]}"
    )
    html, markdown, latex, main = ex.results
    assert html.html == "<b>bold</b>" and markdown.markdown == "# title"
    assert latex.latex == "$x^2$"
    assert main.is_main_result and main.json == {"k": [1, 2]}


def test_a_timeout_interrupts_the_cell_and_keeps_the_context(sbx):
    sbx.run_code("kept_value = 5")
    with pytest.raises(TimeoutException):
        sbx.run_code("import time; time.sleep(120)", timeout=3)
    deadline = time.monotonic() + 30
    while True:
        ex = sbx.run_code("kept_value + 1", timeout=10)
        if ex.text == "6" or time.monotonic() > deadline:
            break
    assert ex.text == "6", ex


def test_javascript_typescript_and_bash(sbx):
    ex = sbx.run_code("console.log('Hello, World!')", language="js")
    assert ex.logs.stdout == ["Hello, World!\n"]
    assert sbx.run_code("await Promise.resolve('later')", language="js").text == "later"
    assert sbx.run_code("const n: number = 40; n + 2", language="ts").text == "42"
    assert sbx.run_code("process.env.FROM_CREATE", language="js").text == "created"
    js = sbx.run_code("process.env.ONE", language="javascript", envs={"ONE": "once"})
    assert js.text == "once"
    assert sbx.run_code("process.env.ONE ?? 'gone'", language="js").text == "gone"

    bash = sbx.run_code("echo $FROM_CREATE; pwd", language="bash")
    # The kernel may send both lines in one stream message.
    assert "".join(bash.logs.stdout) == "created\n/home/user\n"

    languages = [c.language for c in sbx.list_code_contexts()]
    assert "python" in languages and "javascript" in languages and "bash" in languages


def test_contexts_are_separate_kernels(sbx):
    ctx = sbx.create_code_context(cwd="/tmp")
    try:
        assert ctx.cwd == "/tmp"
        assert sbx.run_code("import os; os.getcwd()", context=ctx).text == "/tmp"
        assert sbx.run_code("y = 5", context=ctx).error is None
        assert sbx.run_code("y", context=ctx).text == "5"
        assert sbx.run_code("y").error.name == "NameError"
        assert ctx.id in [c.id for c in sbx.list_code_contexts()]
        sbx.restart_code_context(ctx)
        assert sbx.run_code("y", context=ctx).error.name == "NameError"
    finally:
        sbx.remove_code_context(ctx)
    assert ctx.id not in [c.id for c in sbx.list_code_contexts()]

    js = sbx.create_code_context(language="js")
    try:
        sbx.run_code("let counter = 1", context=js)
        assert sbx.run_code("counter + 1", context=js).text == "2"
    finally:
        sbx.remove_code_context(js)


def test_the_kernels_survive_pause_and_fork(sbx):
    assert sbx.run_code("kept = 41").error is None
    assert sbx.run_code("globalThis.jsKept = 'js'", language="js").error is None
    assert sbx.pause() is True
    back = Sandbox.connect(sbx.sandbox_id)
    assert back.run_code("kept + 1").text == "42"
    assert back.run_code("jsKept", language="js").text == "js"
    [branch] = back.fork()
    try:
        assert branch.run_code("kept = 0; kept").text == "0"
        assert back.run_code("kept").text == "41"
    finally:
        branch.kill()


def test_unknown_languages_are_refused_with_the_list(sbx):
    with pytest.raises(Exception) as refused:
        sbx.run_code("print(1)", language="cobol")
    assert "languages: python, javascript, typescript, bash" in str(refused.value)
