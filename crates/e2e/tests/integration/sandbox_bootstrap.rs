//! The first start's admin key goes to the operator's `client.json` (0600)
//! and nowhere else: a daemon whose output is a log file never writes it
//! there.

use std::os::unix::fs::PermissionsExt;

use warren_e2e::Daemon;

#[tokio::test]
async fn sandbox_admin_key_never_reaches_the_log() {
    let d = Daemon::start().await.expect("daemon starts");
    let log = d.log();
    assert!(log.contains("client.json"), "{log}");
    assert!(!log.contains(&d.key), "the admin key is in the log:\n{log}");
    let secret = d.key.rsplit('_').next().unwrap();
    assert!(!log.contains(secret), "the key's secret is in the log");
    let mode = std::fs::metadata(d.data_dir().join("client.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
