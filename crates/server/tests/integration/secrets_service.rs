//! The secrets service on a real SQLite file: values round-trip through
//! the egress side only, policies naming secrets are checked against the
//! team and the caller's scopes, and their env variables get placeholders.

use std::sync::Arc;

use time::OffsetDateTime;
use warren_audit::SigningKey;
use warren_core::authz::key_permissions;
use warren_core::network::{NetworkPolicy, SecretInjection};
use warren_core::{ErrorKind, KeyId, Role, TeamId, UserId};
use warren_server::audit::Audit;
use warren_server::auth::Caller;
use warren_server::service::Secrets;
use warren_server::service::secrets::{SecretValue, SecretsCipher};
use warren_store::{KeyRecord, SqliteStore, Store, TeamRecord, UserRecord};

async fn setup(dir: &std::path::Path) -> (Secrets, Caller) {
    let store = SqliteStore::open(dir.join("warren.db")).await.unwrap();
    let (audit, _tasks) = Audit::start(store.audit(), SigningKey::from_bytes(&[3; 32]))
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let team = TeamRecord {
        id: TeamId::generate(),
        name: "t".into(),
        operator: false,
        created_at: now,
    };
    let user = UserRecord {
        id: UserId::generate(),
        team: team.id.clone(),
        name: "u".into(),
        created_at: now,
    };
    let key = KeyRecord {
        id: KeyId::generate(),
        team: team.id.clone(),
        user: user.id.clone(),
        name: "k".into(),
        hash: vec![0],
        role: Role::Admin,
        scopes: None,
        created_at: now,
        expires_at: None,
        revoked_at: None,
    };
    let caller = Caller {
        team: team.id.clone(),
        user: user.id.clone(),
        key_id: key.id.clone(),
        role: Role::Admin,
        permissions: key_permissions(Role::Admin, None, false),
        sandbox: None,
    };
    store.create_team(team, user, key).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let cipher = SecretsCipher::load_or_create(&dir.join("secrets-key")).unwrap();
    (Secrets::new(store, cipher, audit), caller)
}

fn policy(secret: &str, env: Option<&str>) -> NetworkPolicy {
    NetworkPolicy {
        allow: vec!["api.example.com".parse().unwrap()],
        inject: vec![SecretInjection {
            secret: secret.into(),
            host: "api.example.com".into(),
            header: "Authorization".into(),
            format: "Bearer {value}".into(),
            env: env.map(Into::into),
        }],
        ..NetworkPolicy::default()
    }
}

#[tokio::test]
async fn injections_are_checked_and_headers_carry_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let (secrets, caller) = setup(dir.path()).await;
    secrets
        .set(&caller, "gh", SecretValue::new("ghp_value".into()))
        .await
        .unwrap();

    let env = secrets
        .check_injections(&caller, &caller.team, &policy("gh", Some("GITHUB_TOKEN")))
        .await
        .unwrap();
    assert_eq!(env["GITHUB_TOKEN"], "warren-secret-placeholder:gh");
    assert!(!env.values().any(|v| v.contains("ghp_value")));

    let headers = secrets
        .injected_headers(&caller.team, &policy("gh", None), "api.example.com")
        .await
        .unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].value, "Bearer ghp_value");
    assert!(!format!("{headers:?}").contains("ghp_value"));
    assert!(
        secrets
            .injected_headers(&caller.team, &policy("gh", None), "other.example.com")
            .await
            .unwrap()
            .is_empty()
    );

    // A secret the team does not have, another team, a caller without
    // secrets:use.
    let err = secrets
        .check_injections(&caller, &caller.team, &policy("nope", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(err.message.contains("'nope'"), "{}", err.message);
    let other = TeamId::generate();
    assert!(
        secrets
            .check_injections(&caller, &other, &policy("gh", None))
            .await
            .is_err()
    );
    assert_eq!(
        secrets.reveal(&other, "gh").await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    let viewer = Caller {
        permissions: key_permissions(Role::Viewer, None, false),
        role: Role::Viewer,
        ..caller.clone()
    };
    let err = secrets
        .check_injections(&viewer, &caller.team, &policy("gh", None))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PermissionDenied);
    assert!(err.message.contains("secrets:use"), "{}", err.message);
    // No injection needs no scope.
    assert!(
        secrets
            .check_injections(&viewer, &caller.team, &NetworkPolicy::default())
            .await
            .unwrap()
            .is_empty()
    );

    // With another key file the stored value does not decrypt.
    std::fs::remove_file(dir.path().join("secrets-key")).unwrap();
    let (other_key, _) = {
        let store = SqliteStore::open(dir.path().join("warren.db"))
            .await
            .unwrap();
        let (audit, tasks) = Audit::start(store.audit(), SigningKey::from_bytes(&[3; 32]))
            .await
            .unwrap();
        let cipher = SecretsCipher::load_or_create(&dir.path().join("secrets-key")).unwrap();
        (Secrets::new(Arc::new(store), cipher, audit), tasks)
    };
    assert_eq!(
        other_key.reveal(&caller.team, "gh").await.unwrap_err().kind,
        ErrorKind::Internal
    );
}
