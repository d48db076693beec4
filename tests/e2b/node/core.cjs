// The core flow through the npm `e2b` SDK, configured by the environment
// alone (E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY). Exits non-zero with a
// message on the first failed check.
const assert = require("node:assert/strict");
const { Sandbox, CommandExitError, NotFoundError } = require("e2b");

async function main() {
  const run = Math.random().toString(16).slice(2, 14);
  const metadata = { run, case: "node" };
  const sbx = await Sandbox.create(process.env.E2B_TEST_TEMPLATE || "base", {
    timeoutMs: 120_000,
    metadata,
    envs: { WHO: "node" },
  });
  try {
    const info = await sbx.getInfo();
    assert.equal(info.metadata.case, "node");
    const page = await Sandbox.list({ query: { metadata } }).nextItems();
    assert.deepEqual(page.map((s) => s.sandboxId), [sbx.sandboxId]);

    const r = await sbx.commands.run("echo $WHO; echo err >&2");
    assert.equal(r.stdout, "node\n");
    assert.equal(r.stderr, "err\n");
    await assert.rejects(sbx.commands.run("exit 4"), (e) => e instanceof CommandExitError && e.exitCode === 4);
    const h = await sbx.commands.run("sleep 0.2; echo later", { background: true });
    assert.equal((await h.wait()).stdout, "later\n");

    await sbx.files.write("/home/user/node.txt", "from node");
    assert.equal(await sbx.files.read("/home/user/node.txt"), "from node");
    const bytes = new Uint8Array(1 << 20).map((_, i) => i % 251);
    await sbx.files.write("/home/user/node.bin", bytes.buffer);
    const back = await sbx.files.read("/home/user/node.bin", { format: "bytes" });
    assert.deepEqual(Buffer.from(back), Buffer.from(bytes));
    assert.ok((await sbx.files.list("/home/user")).some((e) => e.name === "node.txt"));

    await sbx.setTimeout(300_000);
    const again = await Sandbox.connect(sbx.sandboxId);
    assert.equal((await again.commands.run("echo again")).stdout, "again\n");

    // Pause, then connect resumes it with its files and processes.
    const sleeper = await sbx.commands.run("sleep 600", { background: true });
    assert.equal(await sbx.pause(), true);
    assert.equal(await sbx.pause(), false);
    const resumed = await Sandbox.connect(sbx.sandboxId);
    assert.equal(await resumed.files.read("/home/user/node.txt"), "from node");
    assert.ok((await resumed.commands.list()).some((p) => p.pid === sleeper.pid));
  } finally {
    await sbx.kill();
  }
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), (e) => e instanceof NotFoundError);
  console.log("node e2b SDK: core flow passed");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
