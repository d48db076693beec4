//! `warren volume`: the team's volumes, directories that outlive sandboxes
//! and are mounted into them with `warren create --volume NAME:/path`.

use clap::Subcommand;
use warren_api_types::Volume;

use super::Ctx;
use crate::exit;

/// Team volumes: persistent directories mounted read-write into sandboxes.
/// A volume outlives the sandboxes that mount it; several may mount it at
/// once. Its files count against the team's disk quota.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Debug, Subcommand)]
enum VolumeCommand {
    /// Create an empty volume (needs sandboxes:create).
    #[command(
        after_help = "Examples:\n  warren volume create datasets\n  warren create --volume datasets:/data"
    )]
    Create {
        /// 1-63 letters, digits, '_', '.' or '-'.
        name: String,
    },
    /// List the team's volumes with their sizes.
    #[command(after_help = "Examples:\n  warren volume ls\n  warren volume ls --json")]
    Ls,
    /// Delete a volume and its files (needs sandboxes:manage); refused
    /// while a live sandbox mounts it.
    #[command(after_help = "Examples:\n  warren volume rm datasets")]
    Rm { name: String },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        VolumeCommand::Create { name } => {
            let volume = client.create_volume(&name).await?;
            if ctx.out.json {
                ctx.out.json(&volume)?;
            } else {
                ctx.out.line(&volume.name)?;
                ctx.out.note("volume created");
            }
        }
        VolumeCommand::Ls => {
            let list = client.volumes().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.volumes.into_iter().map(volume_row).collect();
                ctx.out.table(&["NAME", "ID", "SIZE", "CREATED"], rows)?;
            }
        }
        VolumeCommand::Rm { name } => {
            client.delete_volume(&name).await?;
            if ctx.out.json {
                ctx.out
                    .json(&serde_json::json!({ "name": name, "deleted": true }))?;
            } else {
                ctx.out.line(&name)?;
            }
        }
    }
    Ok(exit::OK)
}

fn volume_row(v: Volume) -> Vec<String> {
    vec![v.name, v.id, format!("{} B", v.size_bytes), v.created_at]
}

/// `NAME:/path` of `--volume`.
pub fn parse_mount(s: &str) -> Result<warren_api_types::VolumeMount, String> {
    match s.split_once(':') {
        Some((name, path)) if !name.is_empty() && path.starts_with('/') => {
            Ok(warren_api_types::VolumeMount {
                name: name.to_owned(),
                path: path.to_owned(),
            })
        }
        _ => Err(format!("'{s}' is not NAME:/absolute/path")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse() {
        let m = parse_mount("data:/mnt/data").unwrap();
        assert_eq!((m.name.as_str(), m.path.as_str()), ("data", "/mnt/data"));
        for bad in ["data", ":/x", "data:x", "data:"] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }
}
