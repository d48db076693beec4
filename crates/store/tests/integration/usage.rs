//! Metering rows: sums add up per sandbox and minute, marks move with them
//! in one transaction, and reports group and scope the sums.

use crate::common;

use common::{TestDb, running, team_id, with_metadata};
use time::{Duration, OffsetDateTime};
use warren_core::SandboxId;
use warren_core::metering::{GroupBy, Usage};
use warren_store::{MeterMark, Store, UsageQuery, UsageSample};

fn minute_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

fn cpu(id: &SandboxId, minute: i64, cpu_ns: u64) -> UsageSample {
    UsageSample {
        sandbox: id.clone(),
        minute,
        usage: Usage {
            cpu_ns,
            running_ms: 1000,
            ..Usage::default()
        },
    }
}

fn query(group_by: GroupBy) -> UsageQuery {
    let now = OffsetDateTime::now_utc();
    UsageQuery {
        group_by,
        team: None,
        sandbox: None,
        owner: None,
        key: None,
        since: now - Duration::hours(1),
        until: now + Duration::minutes(5),
    }
}

#[tokio::test]
async fn sums_add_up_and_marks_move_in_the_same_write() {
    let db = TestDb::new().await;
    let sb = running(&db.store, with_metadata(&[("task", "t1")])).await;
    let now = OffsetDateTime::now_utc();
    let m = minute_of(now);
    let mark = |cpu_ns| MeterMark {
        sandbox: sb.id.clone(),
        cpu_ns,
        counted_to: common::millis(now),
    };
    db.store
        .record_usage(
            &[cpu(&sb.id, m, 5), cpu(&sb.id, m + 1, 7)],
            &[mark(12)],
            &[],
        )
        .await
        .unwrap();
    db.store
        .record_usage(&[cpu(&sb.id, m, 3)], &[mark(15)], &[])
        .await
        .unwrap();
    assert_eq!(db.store.meter_marks().await.unwrap(), vec![mark(15)]);

    let report = db
        .store
        .usage_report(&query(GroupBy::Sandbox))
        .await
        .unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].key.as_deref(), Some(sb.id.as_str()));
    assert_eq!(report[0].usage.cpu_ns, 15);
    assert_eq!(report[0].usage.running_ms, 3000);
    assert_eq!(report[0].sandboxes, 1);

    db.store
        .record_usage(&[], &[], std::slice::from_ref(&sb.id))
        .await
        .unwrap();
    assert!(db.store.meter_marks().await.unwrap().is_empty());
    // The sums outlive the mark.
    let again = db
        .store
        .usage_report(&query(GroupBy::Sandbox))
        .await
        .unwrap();
    assert_eq!(again[0].usage.cpu_ns, 15);
}

#[tokio::test]
async fn reports_group_by_metadata_and_keep_to_the_interval_and_team() {
    let db = TestDb::new().await;
    let a = running(&db.store, with_metadata(&[("task", "build")])).await;
    let b = running(&db.store, with_metadata(&[("task", "build")])).await;
    let c = running(&db.store, with_metadata(&[("task", "it's \"quoted\"")])).await;
    let d = running(&db.store, with_metadata(&[])).await;
    let m = minute_of(OffsetDateTime::now_utc());
    db.store
        .record_usage(
            &[
                cpu(&a.id, m, 100),
                cpu(&b.id, m, 50),
                cpu(&c.id, m, 10),
                cpu(&d.id, m, 1),
                // Two days ago: outside the interval (and before the
                // sandbox existed, which a report never counts).
                cpu(&a.id, m - 2 * 24 * 60, 1_000_000),
            ],
            &[],
            &[],
        )
        .await
        .unwrap();

    let by_task = db
        .store
        .usage_report(&query(GroupBy::Metadata("task".into())))
        .await
        .unwrap();
    let rows: Vec<(Option<&str>, u64, u64)> = by_task
        .iter()
        .map(|g| (g.key.as_deref(), g.sandboxes, g.usage.cpu_ns))
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some("build"), 2, 150),
            (Some("it's \"quoted\""), 1, 10),
            (None, 1, 1)
        ]
    );

    let mut wide = query(GroupBy::Team);
    wide.since = OffsetDateTime::now_utc() - Duration::days(7);
    let by_team = db.store.usage_report(&wide).await.unwrap();
    assert_eq!(by_team.len(), 1);
    assert_eq!(by_team[0].key.as_deref(), Some(team_id().as_str()));
    assert_eq!(
        by_team[0].usage.cpu_ns, 161,
        "minutes before a sandbox's creation do not count"
    );

    let mut other_team = query(GroupBy::Team);
    other_team.team = Some("tother000000".parse().unwrap());
    assert!(db.store.usage_report(&other_team).await.unwrap().is_empty());

    let mut one = query(GroupBy::Sandbox);
    one.sandbox = Some(b.id.clone());
    let only_b = db.store.usage_report(&one).await.unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].usage.cpu_ns, 50);
}

#[tokio::test]
async fn rules_of_every_kind_are_kept() {
    use warren_core::rules::{Rule, RuleAction, RuleKind};
    let db = TestDb::new().await;
    let rules: Vec<Rule> = RuleKind::ALL
        .into_iter()
        .map(|kind| Rule {
            kind,
            threshold: 0.5,
            for_s: 30,
            action: RuleAction::Notify,
        })
        .collect();
    let by = warren_core::KeyId::generate();
    db.store.replace_rules("*", &rules, &by).await.unwrap();
    let stored: Vec<Rule> = db
        .store
        .rules()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(stored.len(), RuleKind::ALL.len());
    for rule in &rules {
        assert!(stored.contains(rule), "{rule:?} was not kept");
    }
}
