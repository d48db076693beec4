//! `warren env`: the shell lines that point another tool at this daemon
//! with the CLI's own settings: Warren's variables, or with `--e2b` those
//! E2B's SDKs read. Nothing is asked of the daemon; the key is only
//! respelled, never minted.

use std::collections::BTreeMap;

use warren_server::auth::ApiKey;

use super::Ctx;
use crate::config::Endpoint;
use crate::exit;

/// Print `export` lines for the configured daemon and key.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
With --e2b the key is given in E2B's spelling (`e2b_` + hex), which E2B's
SDKs insist on; it is the same key. API, sandbox and volume content
traffic share the daemon's port.

Examples:
  eval \"$(warren env --e2b)\"      then run code written for E2B's SDKs
  warren env --e2b --json")]
pub struct Args {
    /// The variables of E2B's SDKs: E2B_API_KEY, E2B_API_URL, E2B_SANDBOX_URL,
    /// E2B_VOLUME_API_URL.
    #[arg(long)]
    e2b: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let vars = variables(&ctx.endpoint()?, args.e2b);
    if ctx.out.json {
        ctx.out.json(&vars)?;
    } else {
        for (name, value) in &vars {
            ctx.out
                .line(&format!("export {name}={}", shell_quote(value)))?;
        }
    }
    Ok(exit::OK)
}

/// The variables to export, by name.
fn variables(endpoint: &Endpoint, e2b: bool) -> BTreeMap<&'static str, String> {
    let url = endpoint.url.as_str().trim_end_matches('/').to_owned();
    let key = &endpoint.api_key;
    if e2b {
        let key = match ApiKey::from_e2b_form(key) {
            Some(_) => key.clone(),
            None => ApiKey::e2b_form(key),
        };
        BTreeMap::from([
            ("E2B_API_KEY", key),
            ("E2B_API_URL", url.clone()),
            ("E2B_SANDBOX_URL", url.clone()),
            ("E2B_VOLUME_API_URL", url),
        ])
    } else {
        BTreeMap::from([("WARREN_API_KEY", key.clone()), ("WARREN_URL", url)])
    }
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.:/@%+=,".contains(&b));
    if plain && !s.is_empty() {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(key: &str) -> Endpoint {
        Endpoint {
            url: "http://10.0.0.5:8700".parse().unwrap(),
            api_key: key.to_owned(),
        }
    }

    #[test]
    fn e2b_variables_respell_the_key_once() {
        let key = "wrn_abcdefghijkl_00ff";
        let vars = variables(&endpoint(key), true);
        let e2b = ApiKey::e2b_form(key);
        assert_eq!(vars["E2B_API_KEY"], e2b);
        assert_eq!(vars["E2B_API_URL"], "http://10.0.0.5:8700");
        assert_eq!(vars["E2B_SANDBOX_URL"], "http://10.0.0.5:8700");
        assert_eq!(vars["E2B_VOLUME_API_URL"], "http://10.0.0.5:8700");
        assert_eq!(vars.len(), 4);
        // A key already in E2B's spelling is kept as it is.
        assert_eq!(variables(&endpoint(&e2b), true)["E2B_API_KEY"], e2b);
        let native = variables(&endpoint(key), false);
        assert_eq!(native["WARREN_API_KEY"], key);
        assert_eq!(native["WARREN_URL"], "http://10.0.0.5:8700");
    }

    #[test]
    fn values_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_quote("http://h:1"), "http://h:1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
