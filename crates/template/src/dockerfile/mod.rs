//! Dockerfiles → build plans.
//!
//! [`plan`] reads a Dockerfile into a [`Plan`]: the template it starts
//! `FROM`, the steps that change files (RUN, COPY, ADD and WORKDIR's
//! directory), each with the environment, user and directory it runs
//! under, and the config the result keeps (Env, WorkingDir, User,
//! Entrypoint, Cmd, exposed ports). Supported: FROM (one stage; a Warren
//! template reference, build args substituted), RUN, COPY and ADD of local
//! files (`--chown`, `--chmod`), ENV, ARG (with build args), WORKDIR,
//! USER, EXPOSE, CMD, ENTRYPOINT, HEALTHCHECK (`CMD …` becomes the ready
//! check, options are ignored), LABEL and MAINTAINER (kept nowhere).
//! Anything else is an error naming its line, as are multi-stage builds,
//! ADD of URLs and `COPY --from`.
//!
//! A start command: CMD (after ENTRYPOINT) is started in every sandbox of
//! the template when the Dockerfile EXPOSEs a port or has a HEALTHCHECK,
//! and the sandbox counts as started once the first exposed port accepts
//! connections and the health check's command exits 0; without either,
//! CMD is only recorded, as for imported images.

mod lexer;
mod words;

use std::collections::BTreeMap;

use lexer::Instruction;
pub use lexer::MAX_DOCKERFILE;
pub use words::substitute;

use crate::recipe::StartCommand;

/// A Dockerfile that cannot be built, with the line at fault (0: none).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {message}")]
pub struct DockerfileError {
    pub line: usize,
    pub message: String,
}

impl DockerfileError {
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// What a step runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    /// ENV so far plus ARG values (which the result does not keep).
    pub env: BTreeMap<String, String>,
    pub user: String,
    pub workdir: String,
}

/// A step that changes files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// argv, run as `context.user` in `context.workdir`.
    Run(Vec<String>),
    /// Files of the build context (paths relative to it; directories copy
    /// their contents) to `dest` (absolute; a directory when it ends in `/`
    /// or there are several sources).
    Copy {
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
        chmod: Option<u32>,
    },
    /// Creates the directory (WORKDIR), owned by `context.user`.
    MakeDir(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// The instruction as written (joined), for logs and cache keys.
    pub text: String,
    pub action: Action,
    pub context: StepContext,
}

/// A Dockerfile read and checked; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// A template reference: `NAME`, `NAME:TAG` or `NAME@VERSION`.
    pub from: String,
    pub steps: Vec<Step>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub exposed: Vec<u16>,
    /// A shell command that exits 0 once the start command is ready.
    pub ready_cmd: Option<String>,
}

impl Plan {
    /// The start command the module docs describe, if any.
    pub fn start(&self) -> Option<StartCommand> {
        let port = self.exposed.first().copied();
        let cmd: Vec<String> = self.entrypoint.iter().chain(&self.cmd).cloned().collect();
        if cmd.is_empty() || (port.is_none() && self.ready_cmd.is_none()) {
            return None;
        }
        Some(StartCommand {
            cmd,
            user: self.user.clone().unwrap_or_else(|| "root".into()),
            cwd: self.workdir.clone().unwrap_or_else(|| "/".into()),
            ready_port: port,
            ready_cmd: self.ready_cmd.clone(),
        })
    }
}

/// Reads `text` with the build arguments `args`.
pub fn plan(text: &str, args: &BTreeMap<String, String>) -> Result<Plan, DockerfileError> {
    let mut from: Option<String> = None;
    let mut arg_values: BTreeMap<String, String> = BTreeMap::new();
    let mut plan = Plan {
        from: String::new(),
        steps: Vec::new(),
        env: BTreeMap::new(),
        workdir: None,
        user: None,
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        exposed: Vec::new(),
        ready_cmd: None,
    };
    for ins in lexer::instructions(text)? {
        let line = ins.line;
        let fail = |m: String| DockerfileError::at(line, m);
        // Variables visible here: ARGs, then ENV (ENV wins, as in Docker).
        let mut vars = arg_values.clone();
        vars.extend(plan.env.clone());
        let sub = |s: &str| words::substitute(s, &vars).map_err(fail);
        if from.is_none() && !matches!(ins.keyword.as_str(), "FROM" | "ARG") {
            return Err(fail(format!(
                "{} before FROM; a Dockerfile starts FROM a template",
                ins.keyword
            )));
        }
        match ins.keyword.as_str() {
            "FROM" => {
                if from.is_some() {
                    return Err(fail(
                        "a second FROM: multi-stage builds are not supported".into(),
                    ));
                }
                let words = words::shell_words(&sub(&ins.args)?).map_err(fail)?;
                match words.as_slice() {
                    [image] if !image.starts_with("--") => {
                        if image == "scratch" {
                            return Err(fail("FROM scratch is not supported: start FROM a template (e.g. tiny or base)".into()));
                        }
                        from = Some(image.clone());
                    }
                    [_, as_kw, _] if as_kw.eq_ignore_ascii_case("as") => {
                        return Err(fail("named stages (FROM … AS …) are not supported".into()));
                    }
                    _ => return Err(fail(format!("FROM takes one template, got {:?}", ins.args))),
                }
            }
            "ARG" => {
                let (name, default) = match ins.args.split_once('=') {
                    Some((n, d)) => (n.trim(), Some(sub(d.trim())?)),
                    None => (ins.args.trim(), None),
                };
                check_name(name).map_err(fail)?;
                let value = args.get(name).cloned().or(default).unwrap_or_default();
                arg_values.insert(name.to_owned(), value);
            }
            "ENV" => {
                for (k, v) in words::pairs(&ins.args).map_err(fail)? {
                    check_name(&k).map_err(fail)?;
                    let v = sub(&v)?;
                    plan.env.insert(k, v);
                }
            }
            "WORKDIR" => {
                let dir = sub(&ins.args)?;
                let dir = absolute(plan.workdir.as_deref().unwrap_or("/"), &dir);
                plan.workdir = Some(dir.clone());
                plan.steps
                    .push(step(&ins, Action::MakeDir(dir), &plan, &arg_values));
            }
            "USER" => {
                let user = sub(&ins.args)?;
                if user.is_empty() || user.contains(char::is_whitespace) {
                    return Err(fail(format!(
                        "USER takes one user[:group], got {:?}",
                        ins.args
                    )));
                }
                plan.user = Some(user);
            }
            "EXPOSE" => {
                for word in words::shell_words(&sub(&ins.args)?).map_err(fail)? {
                    let port = word.split('/').next().unwrap_or("");
                    let port: u16 = port
                        .parse()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| fail(format!("'{word}' is not a port")))?;
                    plan.exposed.push(port);
                }
            }
            "RUN" => {
                let argv = command(&ins).map_err(fail)?;
                plan.steps
                    .push(step(&ins, Action::Run(argv), &plan, &arg_values));
            }
            "CMD" => plan.cmd = command(&ins).map_err(fail)?,
            "ENTRYPOINT" => plan.entrypoint = command(&ins).map_err(fail)?,
            "COPY" | "ADD" => {
                let action = copy(&ins, &sub, plan.workdir.as_deref()).map_err(fail)?;
                plan.steps.push(step(&ins, action, &plan, &arg_values));
            }
            "HEALTHCHECK" => plan.ready_cmd = health_check(&ins.args).map_err(fail)?,
            "LABEL" | "MAINTAINER" => {}
            other => {
                return Err(fail(format!(
                    "{other} is not supported (supported: FROM, RUN, COPY, ADD, ENV, ARG, WORKDIR, USER, EXPOSE, CMD, ENTRYPOINT, HEALTHCHECK, LABEL)"
                )));
            }
        }
    }
    plan.from =
        from.ok_or_else(|| DockerfileError::at(0, "no FROM: a Dockerfile starts FROM a template"))?;
    Ok(plan)
}

fn step(ins: &Instruction, action: Action, plan: &Plan, args: &BTreeMap<String, String>) -> Step {
    let mut env = args.clone();
    env.extend(plan.env.clone());
    Step {
        line: ins.line,
        text: format!("{} {}", ins.keyword, ins.args),
        action,
        context: StepContext {
            env,
            user: plan.user.clone().unwrap_or_else(|| "root".into()),
            workdir: plan.workdir.clone().unwrap_or_else(|| "/".into()),
        },
    }
}

/// RUN/CMD/ENTRYPOINT: the exec form as it is, the shell form via `/bin/sh -c`.
fn command(ins: &Instruction) -> Result<Vec<String>, String> {
    let argv = match words::json_array(&ins.args) {
        Some(parsed) => parsed?,
        None => vec!["/bin/sh".into(), "-c".into(), ins.args.clone()],
    };
    if argv.is_empty() || argv.iter().all(String::is_empty) {
        return Err(format!("{} needs a command", ins.keyword));
    }
    Ok(argv)
}

/// `HEALTHCHECK [--option=value …] CMD command` → the command as one shell
/// line; `HEALTHCHECK NONE` → none.
fn health_check(args: &str) -> Result<Option<String>, String> {
    let mut rest = args.trim();
    while let Some(option) = rest.strip_prefix("--") {
        rest = option
            .split_once(char::is_whitespace)
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
    }
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(None);
    }
    let (keyword, command) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !keyword.eq_ignore_ascii_case("CMD") || command.trim().is_empty() {
        return Err("HEALTHCHECK takes NONE or [options] CMD command".into());
    }
    let command = command.trim();
    Ok(Some(match words::json_array(command) {
        Some(argv) => {
            let argv = argv?;
            match argv.first().map(String::as_str) {
                Some("CMD-SHELL") => argv[1..].join(" "),
                _ => argv
                    .iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            }
        }
        None => command.to_owned(),
    }))
}

/// `word` quoted for `/bin/sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn copy(
    ins: &Instruction,
    sub: &dyn Fn(&str) -> Result<String, DockerfileError>,
    workdir: Option<&str>,
) -> Result<Action, String> {
    let text = sub(&ins.args).map_err(|e| e.message)?;
    let mut words = match words::json_array(&text) {
        Some(parsed) => parsed?,
        None => words::shell_words(&text)?,
    };
    let mut chown = None;
    let mut chmod = None;
    while words.first().is_some_and(|w| w.starts_with("--")) {
        let flag = words.remove(0);
        let (name, value) = flag.split_once('=').unwrap_or((flag.as_str(), ""));
        match name {
            "--chown" if !value.is_empty() => chown = Some(value.to_owned()),
            "--chmod" => {
                chmod = Some(
                    u32::from_str_radix(value, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| format!("--chmod={value} is not an octal mode"))?,
                );
            }
            "--from" => return Err("COPY --from (multi-stage) is not supported".into()),
            other => return Err(format!("{} {other} is not supported", ins.keyword)),
        }
    }
    if words.len() < 2 {
        return Err(format!("{} needs a source and a destination", ins.keyword));
    }
    let dest_raw = words.pop().unwrap_or_default();
    for source in &words {
        if ins.keyword == "ADD" && (source.contains("://") || source.starts_with("git@")) {
            return Err(format!(
                "ADD {source}: remote sources are not supported (builds have no network for ADD); fetch it in a RUN step"
            ));
        }
        if ins.keyword == "ADD" && is_archive(source) {
            return Err(format!(
                "ADD {source}: archives are not unpacked; COPY it and RUN tar"
            ));
        }
    }
    let dir_dest = dest_raw.ends_with('/') || words.len() > 1;
    let mut dest = absolute(workdir.unwrap_or("/"), &dest_raw);
    if dir_dest && !dest.ends_with('/') {
        dest.push('/');
    }
    Ok(Action::Copy {
        sources: words,
        dest,
        chown,
        chmod,
    })
}

fn is_archive(name: &str) -> bool {
    [".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid variable name"))
    }
}

/// `path` resolved against the directory `base` (both absolute after).
pub fn absolute(base: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests;
