//! E2B's build instructions (the body of `POST /v2/templates/{id}/builds/
//! {buildID}`, `TemplateBuildStartV2`) → a Warren build plan.
//!
//! Semantics follow E2B's builder: steps run as `user` (created when the
//! base lacks it) in that user's home until USER and WORKDIR say
//! otherwise; RUN is `bash -l -c` (plain `sh -c` where the base has no
//! bash), as root or the step's own user; ENV values expand `$VAR` from
//! the base's environment and earlier ENVs and hold for the build only;
//! COPY reads the files uploaded under its `filesHash` (unpacked at
//! `<context>/<hash>/`), the part of its source before any glob naming
//! what is copied: a file to the exact path (into it when it ends in `/`),
//! a directory's contents merged into the target; owned by the step's user
//! unless its owner argument says otherwise. `startCmd` runs in every
//! sandbox of the template and `readyCmd` (default: ready at once) says
//! when it is up.
//!
//! Step numbers: E2B counts the `from…` call as 0 and the instructions
//! from 1, which is the `line` of each planned step; the step that makes
//! the default user is line 0.

use std::collections::BTreeMap;

use serde::Deserialize;
use warren_template::dockerfile::{self, Action, Plan, Step, StepContext};

/// E2B's default user, made in the template when its base lacks it.
pub const DEFAULT_USER: &str = "user";

/// Runs `$1` with bash as a login shell where bash exists, else with sh.
const SHELL: &str =
    r#"if command -v bash >/dev/null 2>&1; then exec bash -l -c "$1"; fi; exec sh -c "$1""#;
/// Makes the user `$1` unless it exists (shadow's useradd, else busybox).
const ENSURE_USER: &str = r#"id -u "$1" >/dev/null 2>&1 && exit 0; if command -v useradd >/dev/null 2>&1; then useradd --create-home --shell /bin/bash "$1"; else adduser -D "$1"; fi"#;
/// Gives `$1` passwordless sudo where sudo is installed.
const SUDOER: &str = r#"if [ -d /etc/sudoers.d ]; then echo "$1 ALL=(ALL:ALL) NOPASSWD: ALL" > "/etc/sudoers.d/90-$1" && chmod 0440 "/etc/sudoers.d/90-$1"; fi"#;

/// `TemplateBuildStartV2`; fields the SDKs add later are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    #[serde(default)]
    pub from_image: Option<String>,
    #[serde(default)]
    pub from_template: Option<String>,
    #[serde(default)]
    pub from_image_registry: Option<serde_json::Value>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub steps: Vec<BuildStep>,
    #[serde(default)]
    pub start_cmd: Option<String>,
    #[serde(default)]
    pub ready_cmd: Option<String>,
}

/// `TemplateStep`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStep {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub files_hash: Option<String>,
    #[serde(default)]
    pub force: bool,
}

/// A build spec Warren cannot build, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// What [`plan`] makes of a spec.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    /// The uploaded file sets the COPY steps read.
    pub hashes: Vec<String>,
    /// The first planned step that runs even when cached (`force`).
    pub fresh_from: Option<usize>,
}

/// The Warren template reference the spec starts from. `templates` are
/// the names of the ready templates, for the mapping and the error.
pub fn base(spec: &BuildSpec, templates: &[String]) -> Result<String, SpecError> {
    if let Some(template) = &spec.from_template {
        return Ok(template.clone());
    }
    let image = spec.from_image.as_deref().unwrap_or("e2bdev/base");
    if spec.from_image_registry.is_some() {
        return Err(SpecError(format!(
            "image {image}: Warren pulls from no registry, private or public; {}",
            bases(templates)
        )));
    }
    let (repository, tag) = split_image(image);
    let mapped = match (repository.as_str(), tag.as_str()) {
        ("e2bdev/base", _) => Some("base".to_owned()),
        ("e2bdev/code-interpreter", _) => Some("code-interpreter".to_owned()),
        ("debian", "stable" | "bookworm" | "12" | "latest" | "stable-slim" | "bookworm-slim") => {
            Some("base".to_owned())
        }
        (name, tag) if templates.iter().any(|t| t == name) => Some(if tag == "latest" {
            name.to_owned()
        } else {
            format!("{name}:{tag}")
        }),
        _ => None,
    };
    let mapped = mapped.ok_or_else(|| {
        SpecError(format!(
            "image {image} cannot be had here: Warren pulls from no container registry; {}",
            bases(templates)
        ))
    })?;
    if templates.contains(&name_of(&mapped)) {
        Ok(mapped)
    } else {
        Err(SpecError(format!(
            "image {image} maps to the template {mapped}, which is not built on this host; {}",
            bases(templates)
        )))
    }
}

fn name_of(reference: &str) -> String {
    reference
        .split([':', '@'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The sentence naming the bases a build may start from.
fn bases(templates: &[String]) -> String {
    format!(
        "builds start from a Warren template: fromTemplate one of [{}], or fromImage e2bdev/base or debian:bookworm/stable (Warren's base, Debian 12), e2bdev/code-interpreter, or the name of a template (import other images with `warren template import`)",
        templates.join(", ")
    )
}

/// `docker.io/library/debian:12` → (`debian`, `12`); no tag → `latest`.
fn split_image(image: &str) -> (String, String) {
    let image = image.split('@').next().unwrap_or(image);
    let (repository, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    let repository = repository
        .trim_start_matches("docker.io/")
        .trim_start_matches("index.docker.io/")
        .trim_start_matches("library/");
    (repository.to_owned(), tag.to_owned())
}

/// The plan of `spec` from the template `from`, whose environment is
/// `base_env`.
pub fn plan(
    spec: &BuildSpec,
    from: String,
    base_env: &BTreeMap<String, String>,
) -> Result<Planned, SpecError> {
    let mut p = Planner {
        env: BTreeMap::new(),
        user: DEFAULT_USER.to_owned(),
        workdir: None,
        steps: Vec::new(),
    };
    p.push(
        0,
        format!("USER {DEFAULT_USER} (the default user)"),
        "root",
        shell_script(ENSURE_USER, &[DEFAULT_USER]),
    );
    let mut hashes = Vec::new();
    let mut fresh_from = spec.force.then_some(0);
    let mut user_set = None;
    for (i, step) in spec.steps.iter().enumerate() {
        let line = i + 1;
        let fail = |what: String| SpecError(format!("step {line} ({}): {what}", step.kind));
        if step.force && fresh_from.is_none() {
            fresh_from = Some(p.steps.len());
        }
        let args = &step.args;
        match step.kind.to_ascii_uppercase().as_str() {
            "RUN" => {
                let command = args.first().filter(|c| !c.trim().is_empty());
                let command = command.ok_or_else(|| fail("needs a command".into()))?;
                let user = args.get(1).filter(|u| !u.is_empty()).cloned();
                let user = user.unwrap_or_else(|| p.user.clone());
                check_user(&user).map_err(fail)?;
                p.push(
                    line,
                    format!("RUN {command}"),
                    &user,
                    shell_script(SHELL, &[command]),
                );
            }
            "ENV" => {
                if args.is_empty() || args.len() % 2 != 0 {
                    return Err(fail("takes names and values in pairs".into()));
                }
                for pair in args.chunks(2) {
                    let name = &pair[0];
                    if name.is_empty() || name.contains(['=', '\0']) {
                        return Err(fail(format!("{name:?} is not a variable name")));
                    }
                    let mut vars = base_env.clone();
                    vars.extend(p.env.clone());
                    let value = dockerfile::substitute(&pair[1], &vars).map_err(&fail)?;
                    p.env.insert(name.clone(), value);
                }
            }
            "WORKDIR" => {
                let dir = args.first().filter(|d| !d.is_empty());
                let dir = dir.ok_or_else(|| fail("needs a path".into()))?;
                let dir = dockerfile::absolute(&p.current_dir(&p.user), dir);
                let text = format!("WORKDIR {dir}");
                p.push_action(line, text, &p.user.clone(), Action::MakeDir(dir.clone()));
                p.workdir = Some(dir);
            }
            "USER" => {
                let name = args.first().cloned().unwrap_or_default();
                check_user(&name).map_err(fail)?;
                p.push(
                    line,
                    format!("USER {name}"),
                    "root",
                    shell_script(ENSURE_USER, &[&name]),
                );
                if args.get(1).is_some_and(|s| s == "true") {
                    p.push(
                        line,
                        format!("USER {name} (sudo)"),
                        "root",
                        shell_script(SUDOER, &[&name]),
                    );
                }
                p.user = name.clone();
                user_set = Some(name);
            }
            "COPY" => {
                let hash = step.files_hash.as_deref().unwrap_or_default();
                if !is_files_hash(hash) {
                    return Err(fail(
                        "needs the filesHash of its uploaded files (64 hex digits)".into(),
                    ));
                }
                let (src, dest) = match args.as_slice() {
                    [src, dest, ..] if !src.is_empty() && !dest.is_empty() => (src, dest),
                    _ => return Err(fail("needs a source and a destination".into())),
                };
                let source = copy_source(hash, src).map_err(&fail)?;
                let mut target = dockerfile::absolute(&p.current_dir(&p.user), dest);
                if dest.ends_with('/') && !target.ends_with('/') {
                    target.push('/');
                }
                let owner = match args.get(2).filter(|o| !o.is_empty()) {
                    Some(o) if o.contains(':') => Some(o.clone()),
                    Some(o) => Some(format!("{o}:{o}")),
                    None if p.user == "root" => None,
                    None => Some(format!("{0}:{0}", p.user)),
                };
                let chmod = match args.get(3).filter(|m| !m.is_empty()) {
                    Some(m) => Some(
                        u32::from_str_radix(m, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| fail(format!("{m:?} is not an octal mode")))?,
                    ),
                    None => None,
                };
                if !hashes.iter().any(|h| h == hash) {
                    hashes.push(hash.to_owned());
                }
                let text = format!("COPY {src} {dest}");
                let action = Action::Copy {
                    sources: vec![source],
                    dest: target,
                    chown: owner,
                    chmod,
                };
                p.push_action(line, text, "root", action);
            }
            other => {
                return Err(fail(format!(
                    "{other} is not an instruction E2B's builder sends (RUN, COPY, ENV, WORKDIR, USER)"
                )));
            }
        }
    }
    let start = spec.start_cmd.as_deref().filter(|c| !c.trim().is_empty());
    let mut plan = Plan {
        from,
        env: BTreeMap::new(),
        workdir: p.workdir.clone(),
        user: user_set,
        entrypoint: Vec::new(),
        cmd: start.map(|c| shell_script(SHELL, &[c])).unwrap_or_default(),
        exposed: Vec::new(),
        ready_cmd: None,
        steps: Vec::new(),
    };
    if start.is_some() {
        // It runs as the last user in the last directory (the user's home
        // when no WORKDIR said otherwise), ready once `readyCmd` passes.
        plan.user = Some(p.user.clone());
        plan.workdir = Some(p.current_dir(&p.user));
        let ready = spec.ready_cmd.as_deref().filter(|r| !r.trim().is_empty());
        plan.ready_cmd = Some(ready.unwrap_or("true").to_owned());
    }
    plan.steps = p.steps;
    Ok(Planned {
        plan,
        hashes,
        fresh_from,
    })
}

struct Planner {
    /// ENV so far (build steps only).
    env: BTreeMap<String, String>,
    user: String,
    workdir: Option<String>,
    steps: Vec<Step>,
}

impl Planner {
    /// The directory steps of `user` run in.
    fn current_dir(&self, user: &str) -> String {
        self.workdir.clone().unwrap_or_else(|| home(user))
    }

    fn push(&mut self, line: usize, text: String, user: &str, argv: Vec<String>) {
        self.push_action(line, text, user, Action::Run(argv));
    }

    fn push_action(&mut self, line: usize, text: String, user: &str, action: Action) {
        self.steps.push(Step {
            line,
            text,
            action,
            context: StepContext {
                env: self.env.clone(),
                user: user.to_owned(),
                workdir: self.current_dir(user),
            },
        });
    }
}

fn home(user: &str) -> String {
    if user == "root" {
        "/root".to_owned()
    } else {
        format!("/home/{user}")
    }
}

fn shell_script(script: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec!["/bin/sh".into(), "-c".into(), script.into(), "sh".into()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

fn check_user(user: &str) -> Result<(), String> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{user:?} is not a user name"))
    }
}

/// E2B's file-set hashes: SHA-256, lower-case hex.
pub fn is_files_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The context path a COPY of `src` reads: the upload's directory, then
/// the part of `src` before its first glob (the SDK packed what matched).
fn copy_source(hash: &str, src: &str) -> Result<String, String> {
    let mut path = hash.to_owned();
    for part in src.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(format!("{src}: sources stay inside the build context")),
            p if p.contains(['*', '?', '[', '{']) => break,
            p => {
                path.push('/');
                path.push_str(p);
            }
        }
    }
    if src.starts_with('/') {
        return Err(format!("{src}: sources are relative to the build context"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests;
