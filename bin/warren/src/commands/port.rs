//! `warren port`: the URLs of a port a sandbox listens on.

use serde::Serialize;
use url::Url;
use warren_api_types::{Health, Sandbox};
use warren_core::SandboxId;

use super::Ctx;
use crate::{exit, parse};

/// The agent's port, never exposed.
const AGENT_PORT: u16 = 49983;

/// Print the URLs of a sandbox's port (a server listening inside on 0.0.0.0).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The host-style URL ({port}-{id}.{domain}) suits browsers: *.localhost needs no
DNS. Unless the port is public it carries the sandbox's traffic token as
?warren_token=, which the daemon turns into a cookie for that host; treat the
URL like a password. The path-style URL works with any client.

Examples:
  warren exec $ID -- python3 -m http.server 8000 &
  warren port $ID 8000
  curl \"$(warren port $ID 8000 --json | jq -r .path_url)\"")]
pub struct Args {
    /// The sandbox id.
    #[arg(value_name = "ID", value_parser = parse::sandbox_id)]
    id: SandboxId,
    /// The port inside the sandbox (1-65535; not the agent's 49983).
    #[arg(value_name = "PORT", value_parser = port)]
    port: u16,
}

fn port(raw: &str) -> Result<u16, String> {
    match raw.parse::<u16>() {
        Ok(AGENT_PORT) => Err(format!(
            "port {AGENT_PORT} is the Warren agent's and is not exposed"
        )),
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("expected a port from 1 to 65535, got '{raw}'")),
    }
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct PortUrls {
    sandbox: String,
    port: u16,
    /// Open to anyone who knows the URL.
    public: bool,
    /// Whether the URLs carry the traffic token.
    with_token: bool,
    host_url: String,
    path_url: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let client = ctx.client()?;
    let sandbox = client.get(&args.id).await?;
    let health: Health = client
        .get_json(&["health"], "asking the daemon for its ports domain")
        .await?;
    let urls = urls(client.base(), &health.ports_domain, &sandbox, args.port);
    if !urls.public && !urls.with_token {
        ctx.out.note(
            "note: this key may not reach the sandbox's ports (it lacks sandboxes:exec); \
             the URLs need the sandbox's traffic token",
        );
    }
    if ctx.out.json {
        ctx.out.json(&urls)?;
    } else {
        ctx.out.line(&urls.host_url)?;
        ctx.out.line(&urls.path_url)?;
    }
    Ok(exit::OK)
}

fn urls(base: &Url, domain: &str, sandbox: &Sandbox, port: u16) -> PortUrls {
    let domain = if domain.is_empty() {
        "localhost"
    } else {
        domain
    };
    let public = sandbox.network.is_public(port);
    let token = sandbox.traffic_token.as_deref().filter(|_| !public);
    let query = token
        .map(|t| format!("?warren_token={t}"))
        .unwrap_or_default();
    let listener = base
        .port_or_known_default()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let host_url = format!(
        "{}://{port}-{}.{domain}{listener}/{query}",
        base.scheme(),
        sandbox.id
    );
    let path_url = format!(
        "{}/v1/sandboxes/{}/ports/{port}/{query}",
        base.as_str().trim_end_matches('/'),
        sandbox.id
    );
    PortUrls {
        sandbox: sandbox.id.clone(),
        port,
        public,
        with_token: token.is_some(),
        host_url,
        path_url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(token: Option<&str>, public: &[u16]) -> Sandbox {
        serde_json::from_value(serde_json::json!({
            "id": "abcdefghij0123456789", "template": "base", "state": "running",
            "cpus": 1, "memory_mb": 512, "metadata": {}, "team": "t", "owner": "o",
            "created_at": "", "expires_at": "",
            "traffic_token": token, "network": {"public_ports": public},
        }))
        .unwrap()
    }

    #[test]
    fn urls_carry_the_token_unless_the_port_is_public() {
        let base = Url::parse("http://127.0.0.1:8700").unwrap();
        let u = urls(&base, "localhost", &sandbox(Some("tok"), &[]), 8080);
        assert_eq!(
            u.host_url,
            "http://8080-abcdefghij0123456789.localhost:8700/?warren_token=tok"
        );
        assert_eq!(
            u.path_url,
            "http://127.0.0.1:8700/v1/sandboxes/abcdefghij0123456789/ports/8080/?warren_token=tok"
        );
        let u = urls(&base, "", &sandbox(Some("tok"), &[3000]), 3000);
        assert!(u.public && !u.with_token);
        assert_eq!(
            u.host_url,
            "http://3000-abcdefghij0123456789.localhost:8700/"
        );
        let u = urls(&base, "sbx.example.com", &sandbox(None, &[]), 80);
        assert_eq!(
            u.host_url,
            "http://80-abcdefghij0123456789.sbx.example.com:8700/"
        );
    }

    #[test]
    fn ports_are_checked() {
        assert_eq!(port("8080"), Ok(8080));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("49983").unwrap_err().contains("agent"));
    }
}
