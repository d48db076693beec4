// The npm @e2b/code-interpreter SDK with its default template
// (code-interpreter-v1, an alias of Warren's code-interpreter), configured
// by the environment alone. Exits non-zero on the first failed check.
const assert = require("node:assert/strict");
const { Sandbox } = require("@e2b/code-interpreter");

async function main() {
  const sbx = await Sandbox.create({ timeoutMs: 300_000, envs: { WHO: "node" } });
  try {
    await sbx.runCode("x = 40");
    assert.equal((await sbx.runCode("x + 2")).text, "42");

    const lines = [];
    const ex = await sbx.runCode("print('a'); print('b')", {
      onStdout: (m) => lines.push(m.line),
    });
    assert.equal(lines.join(""), "a\nb\n");
    assert.equal(ex.logs.stdout.join(""), "a\nb\n");

    const err = await sbx.runCode("1 / 0");
    assert.equal(err.error.name, "ZeroDivisionError");

    const frame = await sbx.runCode("import pandas as pd\npd.DataFrame({'a': [1, 2]})");
    assert.deepEqual(frame.results[0].data, { a: [1, 2] });

    const plot = await sbx.runCode(
      "import matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\nplt.title('T')\nplt.show()",
    );
    const [figure] = plot.results;
    assert.ok(figure.png.length > 100);
    assert.equal(figure.chart.type, "line");
    assert.equal(figure.chart.title, "T");

    assert.equal((await sbx.runCode("process.env.WHO", { language: "js" })).text, "node");
    assert.equal((await sbx.runCode("const s: string = 'ts'; s", { language: "ts" })).text, "ts");
    const bash = await sbx.runCode("echo $WHO", { language: "bash" });
    assert.deepEqual(bash.logs.stdout, ["node\n"]);

    const ctx = await sbx.createCodeContext({ cwd: "/tmp" });
    assert.equal((await sbx.runCode("import os; os.getcwd()", { context: ctx })).text, "/tmp");
    assert.ok((await sbx.listCodeContexts()).some((c) => c.id === ctx.id));
    await sbx.removeCodeContext(ctx);
  } finally {
    await sbx.kill();
  }
  console.log("code interpreter (node): ok");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
