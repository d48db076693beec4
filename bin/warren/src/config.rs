//! Where the daemon is and which API key to present.
//!
//! Each setting is resolved on its own, first match wins:
//! 1. the `--url` / `--api-key` flags;
//! 2. the environment variables `WARREN_URL` / `WARREN_API_KEY`;
//! 3. the client config file `client.json` (`{"url": "...", "api_key": "..."}`)
//!    at `$WARREN_CONFIG`, else `$WARREN_DATA_DIR/client.json`, else
//!    `/var/lib/warren/client.json`. `warren serve` writes that file.
//!
//! Empty values count as unset. The file is read only when a flag or variable
//! leaves a setting open. Only plain `http://` URLs are accepted: this build
//! talks to the daemon without TLS.

use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// The data directory when `WARREN_DATA_DIR` is not set.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/warren";

const FIX: &str = "start the daemon with `warren serve` (it writes the client config), \
                   or set WARREN_URL and WARREN_API_KEY (or pass --url and --api-key)";

/// A resolved daemon address and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Url,
    pub api_key: String,
}

/// Values given on the command line; they beat everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub url: Option<String>,
    pub api_key: Option<String>,
}

/// Why the daemon's address or key could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither flags, environment nor a client config name the setting.
    #[error("no {what} for the Warren daemon ({path} does not exist): {FIX}", path = .path.display())]
    Missing { what: &'static str, path: PathBuf },
    /// The client config exists but does not name the setting.
    #[error("no {what} for the Warren daemon ({path} has no \"{field}\"): {FIX}", path = .path.display())]
    MissingField {
        what: &'static str,
        field: &'static str,
        path: PathBuf,
    },
    /// The client config could not be read.
    #[error("cannot read the client config {path}: {source}; run as a user who can read it, or set WARREN_URL and WARREN_API_KEY", path = .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The client config is not the expected JSON.
    #[error("the client config {path} is not valid ({reason}); expected {{\"url\": \"http://HOST:PORT\", \"api_key\": \"...\"}}", path = .path.display())]
    Parse { path: PathBuf, reason: String },
    /// The URL does not parse or is not plain HTTP.
    #[error("'{url}' is not a usable daemon URL ({reason}); expected e.g. http://127.0.0.1:8700")]
    BadUrl { url: String, reason: String },
}

#[derive(Debug, Deserialize)]
struct ClientFile {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
}

/// The path of the client config file given an environment lookup.
pub fn client_config_path(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = non_empty(env("WARREN_CONFIG")) {
        return PathBuf::from(p);
    }
    let data_dir = non_empty(env("WARREN_DATA_DIR")).unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    Path::new(&data_dir).join("client.json")
}

/// Resolves the endpoint from flags, then `env`, then the client config file.
pub fn resolve(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, ConfigError> {
    let mut url = non_empty(overrides.url.clone()).or_else(|| non_empty(env("WARREN_URL")));
    let mut api_key =
        non_empty(overrides.api_key.clone()).or_else(|| non_empty(env("WARREN_API_KEY")));

    // The file is consulted only when a setting is still open; `found`
    // records whether it existed, for the error message.
    let path = client_config_path(env);
    let mut found = false;
    if (url.is_none() || api_key.is_none())
        && let Some(file) = read_client_file(&path)?
    {
        found = true;
        url = url.or_else(|| non_empty(file.url));
        api_key = api_key.or_else(|| non_empty(file.api_key));
    }

    match (url, api_key) {
        (Some(url), Some(api_key)) => Ok(Endpoint {
            url: parse_url(&url)?,
            api_key,
        }),
        (_, api_key) => {
            let (what, field) = if api_key.is_none() {
                ("API key", "api_key")
            } else {
                ("URL", "url")
            };
            Err(if found {
                ConfigError::MissingField { what, field, path }
            } else {
                ConfigError::Missing { what, path }
            })
        }
    }
}

/// Reads `path`; `Ok(None)` if it does not exist.
fn read_client_file(path: &Path) -> Result<Option<ClientFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Parses a daemon URL: `http://` only, with a host, no query or fragment.
pub fn parse_url(raw: &str) -> Result<Url, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl {
        url: raw.chars().take(200).collect(),
        reason: reason.into(),
    };
    let url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" => return Err(bad("https is not supported by this build; use http://")),
        _ => return Err(bad("the scheme must be http")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment is not allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in WARREN_API_KEY, not in the URL"));
    }
    Ok(url)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn write_config(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("client.json");
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(
            dir.path(),
            r#"{"url":"http://file:1","api_key":"file-key"}"#,
        );
        let file = file.to_str().unwrap();

        let env = env_of(&[("WARREN_CONFIG", file)]);
        let ep = resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(ep.url.as_str(), "http://file:1/");
        assert_eq!(ep.api_key, "file-key");

        let env = env_of(&[
            ("WARREN_CONFIG", file),
            ("WARREN_URL", "http://env:2"),
            ("WARREN_API_KEY", "env-key"),
        ]);
        let ep = resolve(&Overrides::default(), &env).unwrap();
        assert_eq!(ep.url.as_str(), "http://env:2/");
        assert_eq!(ep.api_key, "env-key");

        let flags = Overrides {
            url: Some("http://flag:3".into()),
            api_key: Some("flag-key".into()),
        };
        let ep = resolve(&flags, &env).unwrap();
        assert_eq!(ep.url.as_str(), "http://flag:3/");
        assert_eq!(ep.api_key, "flag-key");
    }

    #[test]
    fn settings_resolve_independently() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            r#"{"url":"http://file:1","api_key":"file-key"}"#,
        );
        let data_dir = dir.path().to_str().unwrap();
        // The file is found through WARREN_DATA_DIR; the key comes from a flag.
        let env = env_of(&[("WARREN_DATA_DIR", data_dir), ("WARREN_URL", "")]);
        let flags = Overrides {
            url: None,
            api_key: Some("flag-key".into()),
        };
        let ep = resolve(&flags, &env).unwrap();
        assert_eq!(ep.url.as_str(), "http://file:1/");
        assert_eq!(ep.api_key, "flag-key");
    }

    #[test]
    fn file_is_not_read_when_flags_and_env_suffice() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(dir.path(), "not json");
        let env = env_of(&[
            ("WARREN_CONFIG", file.to_str().unwrap()),
            ("WARREN_URL", "http://env:2"),
            ("WARREN_API_KEY", "env-key"),
        ]);
        assert!(resolve(&Overrides::default(), &env).is_ok());
    }

    #[test]
    fn missing_everything_says_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[("WARREN_DATA_DIR", dir.path().to_str().unwrap())]);
        let msg = resolve(&Overrides::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no API key"), "{msg}");
        assert!(msg.contains("warren serve"), "{msg}");
        assert!(msg.contains("WARREN_URL and WARREN_API_KEY"), "{msg}");
    }

    #[test]
    fn missing_url_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(dir.path(), r#"{"api_key":"k"}"#);
        let env = env_of(&[("WARREN_CONFIG", file.to_str().unwrap())]);
        let msg = resolve(&Overrides::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no URL") && msg.contains("\"url\""), "{msg}");
    }

    #[test]
    fn broken_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(dir.path(), "{\"url\": 5}");
        let env = env_of(&[("WARREN_CONFIG", file.to_str().unwrap())]);
        let msg = resolve(&Overrides::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(msg.contains(file.to_str().unwrap()), "{msg}");
        assert!(msg.contains("not valid"), "{msg}");
    }

    #[test]
    fn urls_must_be_plain_http() {
        assert!(parse_url("http://127.0.0.1:8700").is_ok());
        assert!(parse_url("http://[::1]:8700/prefix").is_ok());
        for bad in [
            "https://example.test",
            "ftp://x",
            "127.0.0.1:8700",
            "",
            "http://u:p@host",
            "http://host/?q=1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
        let msg = parse_url("https://h").unwrap_err().to_string();
        assert!(msg.contains("use http://"), "{msg}");
    }
}
