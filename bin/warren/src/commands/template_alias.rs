//! `warren template alias`: names that stand for a template, so a client
//! asking for a name Warren does not build gets the template that serves
//! it (E2B's SDKs ask for `code-interpreter-v1`, built in).

use clap::Subcommand;
use warren_api_types::TemplateAlias;

use super::Ctx;
use crate::exit;

/// Template aliases: a name that stands for a template. A template of the
/// alias's own name always wins; the reference's tag carries over
/// (ALIAS:stable starts TARGET:stable).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AliasCommand,
}

#[derive(Debug, Subcommand)]
enum AliasCommand {
    /// List the aliases, built-in ones included.
    #[command(
        after_help = "Examples:\n  warren template alias ls\n  warren template alias ls --json"
    )]
    Ls,
    /// Make ALIAS stand for the template TARGET (operators only).
    #[command(
        after_help = "Examples:\n  warren template alias set python code-interpreter\n  warren create --template python"
    )]
    Set {
        /// The name clients ask for.
        alias: String,
        /// The template it stands for (a template name, not an alias).
        target: String,
    },
    /// Remove a stored alias (operators only); a built-in alias it
    /// overrode applies again.
    #[command(after_help = "Examples:\n  warren template alias rm python")]
    Rm { alias: String },
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    match args.command {
        AliasCommand::Ls => {
            let list = client.template_aliases().await?;
            if ctx.out.json {
                ctx.out.json(&list)?;
            } else {
                let rows = list.aliases.iter().map(alias_row).collect();
                ctx.out.table(&["ALIAS", "TEMPLATE", "SOURCE"], rows)?;
            }
        }
        AliasCommand::Set { alias, target } => {
            let set = client.set_template_alias(&alias, &target).await?;
            if ctx.out.json {
                ctx.out.json(&set)?;
            } else {
                ctx.out
                    .line(&format!("{} now stands for {}", set.alias, set.target))?;
            }
        }
        AliasCommand::Rm { alias } => {
            client.remove_template_alias(&alias).await?;
            if ctx.out.json {
                ctx.out
                    .json(&serde_json::json!({ "alias": alias, "removed": true }))?;
            } else {
                ctx.out.line(&format!("removed alias {alias}"))?;
            }
        }
    }
    Ok(exit::OK)
}

fn alias_row(a: &TemplateAlias) -> Vec<String> {
    let source = if a.builtin { "built in" } else { "set" };
    vec![a.alias.clone(), a.target.clone(), source.to_owned()]
}
