//! `warren`: the command-line client of a Warren daemon, and `warren serve`,
//! the daemon itself.
//!
//! This file only parses arguments and dispatches; each command lives in
//! `commands/`. Exit codes are described in [`exit`].

mod client;
mod commands;
mod config;
mod exit;
mod location;
mod ndjson;
mod output;
mod parse;

use std::io::{self, Write};

use clap::{Parser, Subcommand};

use crate::client::ClientError;
use crate::commands::Ctx;
use crate::config::{ConfigError, Overrides};
use crate::location::LocationError;
use crate::output::{Output, OutputError};

const EXAMPLES: &str = "\
Examples:
  warren serve                           run the daemon (as root)
  ID=$(warren create)                    start a sandbox, keep its id
  warren exec $ID -- python3 -c 'print(1 + 1)'
  warren cp ./data.csv $ID:/home/user/   upload a file
  warren shell $ID                       interactive terminal
  warren ls --json
  warren kill $ID
  warren port $ID 8000                   URLs of a server inside
  warren timeline $ID                    what happened in it
  warren replay $ID                      its story and recorded terminal sessions
  warren audit verify                    check the audit log locally

The daemon is found through --url/--api-key, then WARREN_URL/WARREN_API_KEY,
then the client config written by `warren serve` (WARREN_CONFIG, default
/var/lib/warren/client.json).";

/// Isolated sandboxes for AI agents.
#[derive(Debug, Parser)]
#[command(name = "warren", version, after_help = EXAMPLES, propagate_version = true)]
struct Cli {
    /// Print results as JSON (one document per line) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Daemon URL, e.g. http://127.0.0.1:8700 [env: WARREN_URL]
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// API key [env: WARREN_API_KEY]; prefer the variable, flags are visible in `ps`.
    #[arg(long, global = true, value_name = "KEY")]
    api_key: Option<String>,
    /// Print only results: no notes, summaries or progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(Box<commands::serve::Args>),
    Create(commands::create::Args),
    Ls(commands::ls::Args),
    Info(commands::info::Args),
    Exec(commands::exec::Args),
    Shell(commands::shell::Args),
    Cp(commands::cp::Args),
    Kill(commands::kill::Args),
    Timeout(commands::timeout::Args),
    Network(commands::network::Args),
    Pause(commands::pause::Args),
    Port(commands::port::Args),
    Resume(commands::resume::Args),
    Snapshot(commands::snapshot::Args),
    Snapshots(commands::snapshots::Args),
    Rollback(commands::rollback::Args),
    Fork(commands::fork::Args),
    Template(commands::template::Args),
    Team(commands::team::Args),
    Pool(commands::pool::Args),
    Usage(commands::usage::Args),
    Budget(commands::budget::Args),
    Rules(commands::rules::Args),
    User(commands::user::Args),
    Key(commands::key::Args),
    Secret(commands::secret::Args),
    Volume(commands::volume::Args),
    Webhook(commands::webhook::Args),
    Whoami(commands::key::WhoAmIArgs),
    Env(commands::env::Args),
    Audit(commands::audit::Args),
    Timeline(commands::timeline::Args),
    Replay(commands::replay::Args),
    Events(commands::events::Args),
    Hook(commands::hook::Args),
    Timer(commands::timer::Args),
}

fn main() {
    let cli = Cli::parse();
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => match rt.block_on(dispatch(cli, out)) {
            Ok(code) => code,
            Err(err) => report(&err, out),
        },
        Err(err) => report(
            &anyhow::Error::new(err).context("cannot start the async runtime"),
            out,
        ),
    };
    let _ = io::stdout().flush();
    // Exit without dropping the runtime: a thread blocked reading the
    // terminal (`warren shell`) must not hold the process open.
    std::process::exit(code);
}

async fn dispatch(cli: Cli, out: Output) -> anyhow::Result<i32> {
    let ctx = Ctx::new(
        out,
        Overrides {
            url: cli.url,
            api_key: cli.api_key,
        },
    );
    match cli.command {
        Command::Serve(args) => commands::serve::run(*args).await,
        Command::Create(args) => commands::create::run(&ctx, args).await,
        Command::Ls(args) => commands::ls::run(&ctx, args).await,
        Command::Info(args) => commands::info::run(&ctx, args).await,
        Command::Exec(args) => commands::exec::run(&ctx, args).await,
        Command::Shell(args) => commands::shell::run(&ctx, args).await,
        Command::Cp(args) => commands::cp::run(&ctx, args).await,
        Command::Kill(args) => commands::kill::run(&ctx, args).await,
        Command::Timeout(args) => commands::timeout::run(&ctx, args).await,
        Command::Network(args) => commands::network::run(&ctx, args).await,
        Command::Pause(args) => commands::pause::run(&ctx, args).await,
        Command::Port(args) => commands::port::run(&ctx, args).await,
        Command::Resume(args) => commands::resume::run(&ctx, args).await,
        Command::Snapshot(args) => commands::snapshot::run(&ctx, args).await,
        Command::Snapshots(args) => commands::snapshots::run(&ctx, args).await,
        Command::Rollback(args) => commands::rollback::run(&ctx, args).await,
        Command::Fork(args) => commands::fork::run(&ctx, args).await,
        Command::Template(args) => commands::template::run(&ctx, args).await,
        Command::Team(args) => commands::team::run(&ctx, args).await,
        Command::Pool(args) => commands::pool::run(&ctx, args).await,
        Command::Usage(args) => commands::usage::run(&ctx, args).await,
        Command::Budget(args) => commands::budget::run(&ctx, args).await,
        Command::Rules(args) => commands::rules::run(&ctx, args).await,
        Command::User(args) => commands::user::run(&ctx, args).await,
        Command::Key(args) => commands::key::run(&ctx, args).await,
        Command::Secret(args) => commands::secret::run(&ctx, args).await,
        Command::Volume(args) => commands::volume::run(&ctx, args).await,
        Command::Events(args) => commands::events::run(&ctx, args).await,
        Command::Webhook(args) => commands::webhook::run(&ctx, args).await,
        Command::Whoami(args) => commands::key::whoami(&ctx, args).await,
        Command::Env(args) => commands::env::run(&ctx, args).await,
        Command::Audit(args) => commands::audit::run(&ctx, args).await,
        Command::Timeline(args) => commands::timeline::run(&ctx, args).await,
        Command::Replay(args) => commands::replay::run(&ctx, args).await,
        Command::Hook(args) => commands::hook::run(&ctx, args).await,
        Command::Timer(args) => commands::timer::run(&ctx, args).await,
    }
}

/// Prints `err` (`error: …` on stderr; with `--json` also `{code, message}`
/// on stdout) and returns the exit code.
fn report(err: &anyhow::Error, out: Output) -> i32 {
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<OutputError>()
            .is_some_and(OutputError::is_closed_pipe)
    });
    if broken_pipe {
        // The reader went away (`warren ls | head`): like a SIGPIPE death.
        return 141;
    }
    let message = format!("{err:#}");
    let _ = writeln!(io::stderr().lock(), "error: {message}");
    if out.json {
        let code = error_code(err);
        let _ = out.json(&serde_json::json!({ "code": code, "message": message }));
    }
    exit::FAILURE
}

/// A stable code for `--json` error output.
fn error_code(err: &anyhow::Error) -> String {
    if let Some(e) = err.downcast_ref::<ClientError>() {
        return e.code().to_owned();
    }
    if err.downcast_ref::<ConfigError>().is_some() {
        return "not_configured".into();
    }
    if err.downcast_ref::<LocationError>().is_some() {
        return "invalid_argument".into();
    }
    "error".into()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_after_dashes() {
        let cli = Cli::try_parse_from([
            "warren",
            "exec",
            "abcdefghij0123456789",
            "--cwd",
            "/tmp",
            "--",
            "ls",
            "-la",
            "--json",
        ])
        .unwrap();
        let Command::Exec(args) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.cmd, ["ls", "-la", "--json"]);
        assert!(!cli.json, "--json after -- belongs to the remote command");
    }

    #[test]
    fn bad_ids_are_usage_errors() {
        let err = Cli::try_parse_from(["warren", "info", "../../etc"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not a valid sandbox id"), "{err}");
    }

    #[test]
    fn error_codes_for_json() {
        let e = anyhow::Error::new(ClientError::Unreachable {
            url: "http://x".into(),
        })
        .context("while doing a thing");
        assert_eq!(error_code(&e), "unreachable");
        assert_eq!(error_code(&anyhow::anyhow!("plain")), "error");
    }
}
