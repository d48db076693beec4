//! Which template versions the rows name, and filling in rows older than
//! versions.

use crate::common;

use common::{TestDb, new_sandbox, running};
use warren_core::SandboxState as S;
use warren_store::Store;

fn on(template: &str, version: Option<&str>) -> warren_store::NewSandbox {
    warren_store::NewSandbox {
        template: template.into(),
        template_version: version.map(str::to_owned),
        ..new_sandbox()
    }
}

#[tokio::test]
async fn live_sandboxes_name_their_versions_and_dead_ones_do_not() {
    let db = TestDb::new().await;
    let a = running(&db.store, on("base", Some("aaaaaaaaaaaaaaaa"))).await;
    running(&db.store, on("base", Some("bbbbbbbbbbbbbbbb"))).await;
    running(&db.store, on("web", None)).await;
    let mut used = db.store.template_versions_in_use().await.unwrap();
    used.sort();
    assert_eq!(
        used,
        [
            ("base".to_owned(), Some("aaaaaaaaaaaaaaaa".to_owned())),
            ("base".to_owned(), Some("bbbbbbbbbbbbbbbb".to_owned())),
            ("web".to_owned(), None),
        ]
    );

    db.store
        .transition(&a.id, S::Running, S::Killed)
        .await
        .unwrap();
    let used = db.store.template_versions_in_use().await.unwrap();
    assert!(
        !used.contains(&("base".to_owned(), Some("aaaaaaaaaaaaaaaa".to_owned()))),
        "{used:?}"
    );
}

#[tokio::test]
async fn pinning_fills_in_only_rows_without_a_version() {
    let db = TestDb::new().await;
    let old = running(&db.store, on("web", None)).await;
    let new = running(&db.store, on("web", Some("bbbbbbbbbbbbbbbb"))).await;
    let other = running(&db.store, on("base", None)).await;
    assert_eq!(
        db.store
            .pin_template_version("web", "aaaaaaaaaaaaaaaa")
            .await
            .unwrap(),
        1
    );
    let version = |id| {
        let store = &db.store;
        async move {
            store
                .get_sandbox(id)
                .await
                .unwrap()
                .unwrap()
                .template_version
        }
    };
    assert_eq!(version(&old.id).await.as_deref(), Some("aaaaaaaaaaaaaaaa"));
    assert_eq!(version(&new.id).await.as_deref(), Some("bbbbbbbbbbbbbbbb"));
    assert_eq!(version(&other.id).await, None);
}
