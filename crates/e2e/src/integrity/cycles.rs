//! The cycles: each changes the sandbox a little, runs one operation and
//! checks what must hold after it.
//!
//! - pause/resume: a file rewritten and the counter moved just before the
//!   pause are there after the resume, with everything else;
//! - fork: the branch holds exactly the parent's files and process state
//!   and serves; files rewritten and deleted and the counter moved in the
//!   branch leave the parent as it was;
//! - rollback: after a named snapshot, files rewritten, deleted and added,
//!   a link moved and the counter moved three times are all undone by the
//!   rollback, process state included.

use std::time::Instant;

use serde_json::json;

use super::Run;
use super::fixture::{self, Expected, ROOT};
use crate::Daemon;

impl Run<'_> {
    /// Rewrites one random file with new bytes of a new size and moves the
    /// counter once.
    async fn touch(&mut self, id: &str, expected: &mut Expected) -> anyhow::Result<()> {
        let path = self.random_file(expected);
        let size = self.rng.below(512 * 1024);
        let data = self.rng.bytes(size);
        fixture::upload(self.d, id, &path, data.clone()).await?;
        expected.files.insert(path, data);
        self.inc(id, expected).await
    }

    fn random_file(&mut self, expected: &Expected) -> String {
        let n = self.rng.below(expected.files.len());
        expected.files.keys().nth(n).cloned().unwrap_or_default()
    }

    /// `/inc` on `id`'s state process; its answer must be the next link of
    /// the chain (or becomes it).
    async fn inc(&mut self, id: &str, expected: &mut Expected) -> anyhow::Result<()> {
        let state = fixture::process_state(self.d, id, "inc").await?;
        expected.counter += 1;
        if state.counter != expected.counter || state.pid != expected.pid {
            self.problem(format!(
                "/inc of {id}: expected pid {} counter {}, got {state:?}",
                expected.pid, expected.counter
            ));
        }
        match self.chain.get(&state.counter) {
            Some(sha) if *sha != state.sha256 => self.problem(format!(
                "/inc of {id}: counter {} gave a buffer other than before",
                state.counter
            )),
            Some(_) => {}
            None => {
                self.chain.insert(state.counter, state.sha256);
            }
        }
        Ok(())
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let resp = self.d.post(path).json(&body).send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or_default())
    }

    /// Rewrites a file of the parent and moves its counter; returns the
    /// parent's id.
    async fn touch_parent(&mut self) -> anyhow::Result<String> {
        let id = self.parent.clone();
        let mut expected = std::mem::take(&mut self.expected);
        let touched = self.touch(&id, &mut expected).await;
        self.expected = expected;
        touched.map(|()| id)
    }

    /// `POST /v1/sandboxes/{id}/{call}`, timed as `op`; the sandbox must
    /// then be in `state`.
    async fn lifecycle(
        &mut self,
        id: &str,
        call: &str,
        op: &'static str,
        state: &str,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let answer = self
            .post(&format!("/v1/sandboxes/{id}/{call}"), json!({}))
            .await?;
        self.time(op, started);
        anyhow::ensure!(answer["state"] == state, "{call} answered {answer}");
        Ok(())
    }

    /// Pause, resume, check; `standby` names the kind (for the timings).
    pub(super) async fn pause_cycle(&mut self, label: &str, standby: bool) -> anyhow::Result<()> {
        let id = self.touch_parent().await?;
        let (pause, resume) = match standby {
            true => ("pause (standby)", "resume (standby)"),
            false => ("pause (image)", "resume (image)"),
        };
        self.lifecycle(&id, "pause", pause, "paused").await?;
        self.lifecycle(&id, "resume", resume, "running").await?;
        let expected = self.expected.clone();
        self.check(label, &id, &expected).await
    }

    /// Fork one branch; check both; write in the branch; check both; kill
    /// the branch.
    pub(super) async fn fork_cycle(&mut self, label: &str) -> anyhow::Result<()> {
        let id = self.touch_parent().await?;
        let started = Instant::now();
        let forked = self
            .post(&format!("/v1/sandboxes/{id}/fork"), json!({"count": 1}))
            .await?;
        self.time("fork", started);
        let branch = forked["sandboxes"][0]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("fork answered {forked}"))?
            .to_owned();
        let parent = self.expected.clone();
        self.check(&format!("{label}: branch"), &branch, &parent)
            .await?;
        self.check(&format!("{label}: parent"), &id, &parent)
            .await?;

        let mut ours = parent.clone();
        for _ in 0..2 {
            self.touch(&branch, &mut ours).await?;
        }
        let gone = self.random_file(&ours);
        let out = self.d.sh(&branch, &format!("rm {ROOT}/{gone}")).await;
        anyhow::ensure!(out.exit_code == Some(0), "rm: {}", out.stderr_str());
        ours.files.remove(&gone);
        self.check(&format!("{label}: branch after its writes"), &branch, &ours)
            .await?;
        self.check(
            &format!("{label}: parent after the branch's writes"),
            &id,
            &parent,
        )
        .await?;
        kill(self.d, &branch).await
    }

    /// Snapshot; change much; rollback; check; delete the snapshot.
    pub(super) async fn rollback_cycle(&mut self, label: &str, n: usize) -> anyhow::Result<()> {
        let id = self.parent.clone();
        let mut expected = std::mem::take(&mut self.expected);
        self.touch(&id, &mut expected).await?;
        let name = format!("integrity-{n}");
        let started = Instant::now();
        self.post(
            &format!("/v1/sandboxes/{id}/snapshots"),
            json!({"name": name}),
        )
        .await?;
        self.time("snapshot", started);
        let saved = expected.clone();

        for _ in 0..3 {
            self.touch(&id, &mut expected).await?;
        }
        for _ in 0..2 {
            let gone = self.random_file(&expected);
            let out = self.d.sh(&id, &format!("rm {ROOT}/{gone}")).await;
            anyhow::ensure!(out.exit_code == Some(0), "rm: {}", out.stderr_str());
            expected.files.remove(&gone);
        }
        let out = self.d.sh(&id, &format!("mkdir -p {ROOT}/new-{n}")).await;
        anyhow::ensure!(out.exit_code == Some(0), "mkdir: {}", out.stderr_str());
        for i in 0..2 {
            let size = self.rng.below(256 * 1024);
            let data = self.rng.bytes(size);
            let path = format!("new-{n}/added{i}.bin");
            fixture::upload(self.d, &id, &path, data.clone()).await?;
            expected.files.insert(path, data);
        }
        fixture::set_link(self.d, &id, "link-to-file", &format!("new-{n}/added0.bin")).await?;
        expected
            .links
            .insert("link-to-file".to_owned(), format!("new-{n}/added0.bin"));
        self.check(&format!("{label}: changed"), &id, &expected)
            .await?;

        let started = Instant::now();
        let back = self
            .post(
                &format!("/v1/sandboxes/{id}/rollback"),
                json!({"snapshot": name}),
            )
            .await?;
        self.time("rollback", started);
        anyhow::ensure!(back["state"] == "running", "rollback answered {back}");
        self.expected = saved;
        let expected = self.expected.clone();
        self.check(&format!("{label}: rolled back"), &id, &expected)
            .await?;
        let resp = self
            .d
            .delete(&format!("/v1/sandboxes/{id}/snapshots/{name}"))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "deleting {name}: {}",
            resp.status()
        );
        Ok(())
    }
}

async fn kill(d: &Daemon, id: &str) -> anyhow::Result<()> {
    let resp = d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "killing {id}: {}",
        resp.status()
    );
    Ok(())
}
