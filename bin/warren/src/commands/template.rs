//! `warren template`: list, inspect, build, import, tag and remove templates.

use std::time::Instant;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use warren_api_types::{
    BuildEvent, TagTemplateRequest, Template, TemplateRemoved, TemplateVersions,
};

use super::Ctx;
use crate::exit;
use crate::output::{human_bytes, short_duration};

/// List, inspect, build, import, tag and remove templates (root filesystems
/// sandboxes start from). A template has immutable versions (content
/// addresses) and tags; say NAME (its `latest`), NAME:TAG or NAME@VERSION.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TemplateCommand,
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// List templates at their latest version.
    #[command(after_help = "Examples:\n  warren template ls\n  warren template ls --json")]
    Ls,
    /// Show every version of a template, its tags and whether it is in use.
    #[command(
        after_help = "Examples:\n  warren template info base\n  warren template info base --json"
    )]
    Info {
        /// Template name.
        #[arg(value_name = "NAME", value_parser = parse_name)]
        name: String,
    },
    /// Point a tag at a version (`latest` included: what new sandboxes of
    /// NAME start from).
    #[command(after_help = "\
Examples:
  warren template tag base@3f2a9c0d1e4b5a67 stable
  warren template tag base:stable latest     # roll back to the stable version
  warren sandbox create --template base:stable")]
    Tag {
        /// The version to tag: NAME@VERSION or NAME:TAG.
        #[arg(value_name = "TARGET")]
        target: String,
        /// The tag to set.
        #[arg(value_name = "TAG")]
        tag: String,
    },
    /// Remove a template (NAME), a tag (NAME:TAG) or a version's tags
    /// (NAME@VERSION). Running and paused sandboxes keep their version; it
    /// is deleted about a minute after nothing uses it.
    #[command(
        after_help = "Examples:\n  warren template rm web\n  warren template rm web:old\n  warren template rm web@3f2a9c0d1e4b5a67"
    )]
    Rm {
        /// NAME, NAME:TAG or NAME@VERSION.
        #[arg(value_name = "REFERENCE")]
        reference: String,
    },
    /// Names that stand for a template (ls, set, rm).
    Alias(super::template_alias::Args),
    /// Build a template from its recipe (base, tiny, code-interpreter) or
    /// from a Dockerfile (-f), streaming the build log.
    #[command(after_help = "\
Build output streams to stderr; a summary line goes to stdout at the end.
Exits 1 if the build fails.

Examples:
A recipe's template that is already ready is kept as it is unless
--rebuild. With -f, the Dockerfile is built FROM a Warren template: every
step runs in a build sandbox; CONTEXT (default: the Dockerfile's directory)
is uploaded as a tar. A Dockerfile build with nothing changed since the
last one reuses its version; otherwise the first steps that did not change
since an earlier build are replayed from the step cache (--no-cache: every
step runs).

Examples:
  warren template build base
  warren template build base --rebuild
  warren template build web -f Dockerfile .
  warren template build web -f Dockerfile --no-cache .
  warren template build web -f app/Dockerfile --build-arg VERSION=2 --allow pypi.org --allow files.pythonhosted.org app
  warren template build base --json | jq -r 'select(.type == \"log\") | .line'")]
    Build {
        /// Template name.
        #[arg(value_name = "NAME", value_parser = parse_name)]
        name: String,
        /// Build again: a new version, tagged `latest` (sandboxes keep theirs).
        #[arg(long, conflicts_with = "file")]
        rebuild: bool,
        /// Build from this Dockerfile instead of a recipe.
        #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
        file: Option<PathBuf>,
        /// The build context: a directory (default: the Dockerfile's).
        #[arg(value_name = "CONTEXT", requires = "file")]
        context: Option<PathBuf>,
        /// A build argument for ARG, KEY=VALUE (repeatable).
        #[arg(long = "build-arg", value_name = "KEY=VALUE", requires = "file")]
        build_args: Vec<String>,
        /// A domain or CIDR RUN steps may reach besides the host's Debian
        /// mirror (repeatable).
        #[arg(long, value_name = "DOMAIN", requires = "file")]
        allow: Vec<String>,
        /// Run every step, even those the step cache holds.
        #[arg(long, requires = "file")]
        no_cache: bool,
    },
    /// Import an OCI or Docker image archive from this machine as a
    /// template (uploaded to the daemon; no registry is contacted).
    #[command(after_help = "\
SOURCE is one of:
  oci-archive:PATH     a tar of an OCI image layout (skopeo copy ... oci-archive:PATH)
  oci:DIR              an OCI image layout directory (packed and uploaded)
  docker-archive:PATH  the output of `docker save`

Progress streams to stderr; a summary line goes to stdout at the end.
Exits 1 if the import fails. Importing under an existing name makes a new
version and tags it `latest`; sandboxes keep the version they started from.

Examples:
  warren template import alpine oci-archive:alpine.tar
  warren template import app docker-archive:app.tar
  warren sandbox create --template app")]
    Import {
        /// Template name.
        #[arg(value_name = "NAME", value_parser = parse_name)]
        name: String,
        /// Where the image is: oci-archive:PATH, oci:DIR or docker-archive:PATH.
        #[arg(value_name = "SOURCE", value_parser = parse_source)]
        source: (String, PathBuf),
    },
}

fn parse_source(raw: &str) -> Result<(String, PathBuf), String> {
    let (format, path) = raw
        .split_once(':')
        .filter(|(f, p)| ["oci-archive", "oci", "docker-archive"].contains(f) && !p.is_empty())
        .ok_or_else(|| {
            format!("{raw:?} is not oci-archive:PATH, oci:DIR or docker-archive:PATH")
        })?;
    Ok((format.to_owned(), PathBuf::from(path)))
}

fn parse_name(raw: &str) -> Result<String, String> {
    warren_core::spec::validate_template_name(raw)
        .map(|()| raw.to_owned())
        .map_err(|e| e.message)
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    match args.command {
        TemplateCommand::Ls => ls(ctx).await,
        TemplateCommand::Info { name } => info(ctx, &name).await,
        TemplateCommand::Tag { target, tag } => set_tag(ctx, &target, &tag).await,
        TemplateCommand::Rm { reference } => rm(ctx, &reference).await,
        TemplateCommand::Alias(args) => super::template_alias::run(ctx, args).await,
        TemplateCommand::Build {
            name,
            file: Some(file),
            context,
            build_args,
            allow,
            no_cache,
            ..
        } => {
            let build = DockerfileArgs {
                file: &file,
                context,
                build_args: &build_args,
                allow: &allow,
                no_cache,
            };
            build_dockerfile(ctx, &name, build).await
        }
        TemplateCommand::Build { name, rebuild, .. } => build(ctx, &name, rebuild).await,
        TemplateCommand::Import { name, source } => import(ctx, &name, source).await,
    }
}

async fn ls(ctx: &Ctx) -> anyhow::Result<i32> {
    let list = ctx.client()?.templates().await?;
    if ctx.out.json {
        ctx.out.json(&list)?;
        return Ok(exit::OK);
    }
    if list.templates.is_empty() {
        ctx.out
            .note("no templates; build one with `warren template build base`");
        return Ok(exit::OK);
    }
    let rows = list
        .templates
        .into_iter()
        .map(|t| {
            vec![
                t.name,
                t.version.unwrap_or_else(|| "-".into()),
                t.status,
                human_bytes(t.size_bytes),
                t.built_at.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    ctx.out
        .table(&["NAME", "VERSION", "STATUS", "SIZE", "BUILT"], rows)?;
    Ok(exit::OK)
}

async fn info(ctx: &Ctx, name: &str) -> anyhow::Result<i32> {
    let info: TemplateVersions = ctx
        .client()?
        .get_json(&["templates", name], "reading the template")
        .await?;
    if ctx.out.json {
        ctx.out.json(&info)?;
        return Ok(exit::OK);
    }
    if info.versions.is_empty() {
        ctx.out
            .note(&format!("template {name} has no version ready"));
        return Ok(exit::OK);
    }
    let rows = info
        .versions
        .into_iter()
        .map(|v| {
            let t = v.template;
            vec![
                t.version.unwrap_or_else(|| "-".into()),
                if t.tags.is_empty() {
                    "-".into()
                } else {
                    t.tags.join(",")
                },
                if v.in_use { "yes" } else { "no" }.into(),
                human_bytes(t.size_bytes),
                t.built_at.unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    ctx.out
        .table(&["VERSION", "TAGS", "IN USE", "SIZE", "BUILT"], rows)?;
    Ok(exit::OK)
}

async fn set_tag(ctx: &Ctx, target: &str, tag: &str) -> anyhow::Result<i32> {
    let (name, version) = target
        .split_once('@')
        .or_else(|| target.split_once(':'))
        .with_context(|| format!("{target:?} names no version: say NAME@VERSION or NAME:TAG"))?;
    let body = TagTemplateRequest {
        target: version.to_owned(),
    };
    let t: Template = ctx
        .client()?
        .put_json(
            &["templates", name, "tags", tag],
            &body,
            "tagging the template",
        )
        .await?;
    if ctx.out.json {
        ctx.out.json(&t)?;
    } else {
        ctx.out.line(&format!(
            "{name}:{tag} is now {name}@{}",
            t.version.as_deref().unwrap_or("-")
        ))?;
    }
    Ok(exit::OK)
}

async fn rm(ctx: &Ctx, reference: &str) -> anyhow::Result<i32> {
    let removed: TemplateRemoved = ctx
        .client()?
        .delete_json(&["templates", reference], "removing the template")
        .await?;
    if ctx.out.json {
        ctx.out.json(&removed)?;
    } else {
        ctx.out.line(&format!("removed {reference}"))?;
        if !removed.untagged.is_empty() {
            ctx.out.note(&format!(
                "untagged {}; each is deleted once no sandbox or snapshot uses it",
                removed.untagged.join(", ")
            ));
        }
    }
    Ok(exit::OK)
}

async fn build(ctx: &Ctx, name: &str, rebuild: bool) -> anyhow::Result<i32> {
    let started = Instant::now();
    let events = ctx.client()?.build_template(name, rebuild).await?;
    follow(ctx, name, "build", started, events).await
}

/// The options of a Dockerfile build.
struct DockerfileArgs<'a> {
    file: &'a Path,
    context: Option<PathBuf>,
    build_args: &'a [String],
    allow: &'a [String],
    no_cache: bool,
}

async fn build_dockerfile(ctx: &Ctx, name: &str, args: DockerfileArgs<'_>) -> anyhow::Result<i32> {
    let DockerfileArgs {
        file,
        context,
        build_args,
        allow,
        no_cache,
    } = args;
    let started = Instant::now();
    let context = match context {
        Some(c) => c,
        None => file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    if let Some(bad) = build_args
        .iter()
        .find(|a| !a.contains('=') || a.contains(','))
    {
        bail!("--build-arg {bad:?} is not KEY=VALUE (without commas)");
    }
    let (packed, dockerfile) = pack_context(&context, file)?;
    let mut query = vec![
        ("dockerfile", dockerfile),
        ("args", build_args.join(",")),
        ("allow", allow.join(",")),
    ];
    if no_cache {
        query.push(("no_cache", "true".to_owned()));
    }
    let upload = tokio::fs::File::open(packed.path()).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(upload));
    if !ctx.out.json {
        ctx.out.note(&format!(
            "uploading the build context {}",
            context.display()
        ));
    }
    let events = ctx.client()?.build_dockerfile(name, &query, body).await?;
    drop(packed);
    follow(ctx, name, "build", started, events).await
}

/// Tars `context` (symlinks as symlinks) and, if the Dockerfile is not in
/// it, the Dockerfile under `Dockerfile.warren`; returns the tar and the
/// Dockerfile's path inside it.
fn pack_context(context: &Path, file: &Path) -> anyhow::Result<(tempfile::NamedTempFile, String)> {
    if !context.is_dir() {
        bail!("the build context {} is not a directory", context.display());
    }
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    let out = tempfile::NamedTempFile::new().context("could not create a temporary file")?;
    let mut tar = tar::Builder::new(out.reopen()?);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", context)
        .with_context(|| format!("could not pack {}", context.display()))?;
    let inside = std::fs::canonicalize(file)
        .ok()
        .zip(std::fs::canonicalize(context).ok())
        .and_then(|(f, c)| {
            f.strip_prefix(&c)
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        });
    let name = match inside {
        Some(rel) => rel,
        None => {
            tar.append_path_with_name(file, "Dockerfile.warren")
                .with_context(|| format!("could not pack {}", file.display()))?;
            "Dockerfile.warren".to_owned()
        }
    };
    tar.finish()?;
    Ok((out, name))
}

async fn import(ctx: &Ctx, name: &str, (format, path): (String, PathBuf)) -> anyhow::Result<i32> {
    let started = Instant::now();
    // A layout directory goes up as the tar of it (an oci-archive).
    let (format, packed, path) = if format == "oci" {
        let packed = pack_layout(&path)?;
        let p = packed.path().to_path_buf();
        ("oci-archive".to_owned(), Some(packed), p)
    } else {
        (format, None, path)
    };
    let file = tokio::fs::File::open(&path)
        .await
        .with_context(|| format!("could not open {}", path.display()))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    if !ctx.out.json {
        ctx.out.note(&format!("uploading {}", path.display()));
    }
    let events = ctx.client()?.import_template(name, &format, body).await?;
    drop(packed);
    follow(ctx, name, "import", started, events).await
}

/// Tars an OCI layout directory (its `oci-layout`, `index.json` and blobs).
fn pack_layout(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    if !dir.join("index.json").is_file() {
        bail!(
            "{} has no index.json: not an OCI image layout",
            dir.display()
        );
    }
    let out = tempfile::NamedTempFile::new().context("could not create a temporary file")?;
    let mut tar = tar::Builder::new(out.reopen()?);
    for name in ["oci-layout", "index.json"] {
        let p = dir.join(name);
        if p.is_file() {
            tar.append_path_with_name(&p, name)
                .with_context(|| format!("could not pack {}", p.display()))?;
        }
    }
    tar.append_dir_all("blobs", dir.join("blobs"))
        .with_context(|| format!("could not pack {}/blobs", dir.display()))?;
    tar.finish()?;
    Ok(out)
}

async fn follow(
    ctx: &Ctx,
    name: &str,
    what: &str,
    started: Instant,
    mut events: crate::ndjson::EventStream<BuildEvent>,
) -> anyhow::Result<i32> {
    let (verb, doing) = if what == "build" {
        ("built", "building")
    } else {
        ("imported", "importing")
    };
    while let Some(event) = events.next().await? {
        if ctx.out.json {
            ctx.out.json(&event)?;
        }
        match event {
            BuildEvent::Log { line } => {
                if !ctx.out.json {
                    ctx.out.note(&line);
                }
            }
            BuildEvent::Done { template } => {
                if !ctx.out.json {
                    ctx.out.line(&format!(
                        "{verb} template {}@{} ({}) in {}",
                        template.name,
                        template.version.as_deref().unwrap_or("-"),
                        human_bytes(template.size_bytes),
                        short_duration(started.elapsed().as_secs())
                    ))?;
                }
                return Ok(exit::OK);
            }
            BuildEvent::Error { message } => {
                ctx.out
                    .error(&format!("{doing} template {name} failed: {message}"));
                return Ok(exit::FAILURE);
            }
        }
    }
    bail!(
        "the daemon ended the {what} stream without saying whether template {name} was {verb}; check `warren template ls`"
    )
}
