//! What a GitHub delivery is about, read from its payload, and which
//! subscriptions it matches.
//!
//! - Repository: `repository.full_name`, compared without case (GitHub's
//!   names are case-insensitive).
//! - Pull requests: `pull_request.number`; `issue.number` when the issue is
//!   a pull request (`issue_comment` on a pull request); the
//!   `pull_requests[].number` of `check_suite`, `check_run` (and its
//!   `check_suite`) and `workflow_run`.
//! - Branches: `check_suite.head_branch`, `check_run.check_suite.head_branch`,
//!   `workflow_run.head_branch`, `pull_request.head.ref`, and `ref` of a
//!   push when it names `refs/heads/<branch>`.
//!
//! A subscription matches when the event type is one of its `events`, the
//! repository is its own, and, if it names a pull request or a branch,
//! the delivery is about that one.

use serde_json::Value;
use warren_store::Subscription;

/// Event types a GitHub subscription may name (GitHub sends more; these
/// are the ones routed by repository and pull request or branch).
pub const KNOWN_EVENTS: &[&str] = &[
    "check_run",
    "check_suite",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "status",
    "workflow_job",
    "workflow_run",
];

/// What one delivery is about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct About {
    pub repository: Option<String>,
    pub pull_requests: Vec<u64>,
    pub branches: Vec<String>,
}

fn numbers(list: Option<&Value>) -> impl Iterator<Item = u64> + '_ {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|pr| pr.get("number").and_then(Value::as_u64))
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

/// Reads what `payload` is about.
pub fn about(payload: &Value) -> About {
    let p = |path: &str| payload.pointer(path);
    let mut prs: Vec<u64> = Vec::new();
    prs.extend(p("/pull_request/number").and_then(Value::as_u64));
    if p("/issue/pull_request").is_some() {
        prs.extend(p("/issue/number").and_then(Value::as_u64));
    }
    for list in [
        "/check_suite/pull_requests",
        "/check_run/pull_requests",
        "/check_run/check_suite/pull_requests",
        "/workflow_run/pull_requests",
    ] {
        prs.extend(numbers(p(list)));
    }
    prs.sort_unstable();
    prs.dedup();
    let mut branches: Vec<String> = [
        "/check_suite/head_branch",
        "/check_run/check_suite/head_branch",
        "/workflow_run/head_branch",
        "/workflow_job/head_branch",
        "/pull_request/head/ref",
    ]
    .into_iter()
    .filter_map(|path| text(p(path)))
    .collect();
    if let Some(branch) =
        text(p("/ref")).and_then(|r| r.strip_prefix("refs/heads/").map(str::to_owned))
    {
        branches.push(branch);
    }
    branches.sort_unstable();
    branches.dedup();
    About {
        repository: text(p("/repository/full_name")),
        pull_requests: prs,
        branches,
    }
}

/// Whether `sub` wants an `event` delivery about `about`.
pub fn matches(sub: &Subscription, event: &str, about: &About) -> bool {
    let repo_ok = match (&sub.repository, &about.repository) {
        (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
        _ => false,
    };
    repo_ok
        && sub.events.iter().any(|e| e == event)
        && sub
            .pull_request
            .is_none_or(|n| about.pull_requests.contains(&n))
        && sub
            .branch
            .as_ref()
            .is_none_or(|b| about.branches.contains(b))
}

/// `owner/name` as GitHub spells repositories: 1-39 of `A-Z a-z 0-9 -`
/// for the owner, 1-100 of `A-Z a-z 0-9 . _ -` for the name.
pub fn valid_repository(repo: &str) -> bool {
    let Some((owner, name)) = repo.split_once('/') else {
        return false;
    };
    (1..=39).contains(&owner.len())
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(pr: Option<u64>, branch: Option<&str>, events: &[&str]) -> Subscription {
        Subscription {
            id: 0,
            sandbox: "sbx0000000000000000a".parse().unwrap(),
            repository: Some("Acme/App".into()),
            pull_request: pr,
            branch: branch.map(Into::into),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn a_check_suite_is_about_its_pull_requests_and_branch() {
        let payload = json!({
            "action": "completed",
            "check_suite": {"head_branch": "fix-1", "pull_requests": [{"number": 7}, {"number": 9}]},
            "repository": {"full_name": "acme/app"},
        });
        let a = about(&payload);
        assert_eq!(a.pull_requests, [7, 9]);
        assert_eq!(a.branches, ["fix-1"]);
        assert!(matches(
            &sub(Some(7), None, &["check_suite"]),
            "check_suite",
            &a
        ));
        assert!(matches(
            &sub(None, Some("fix-1"), &["check_suite"]),
            "check_suite",
            &a
        ));
        assert!(matches(
            &sub(None, None, &["check_suite"]),
            "check_suite",
            &a
        ));
        assert!(!matches(
            &sub(Some(8), None, &["check_suite"]),
            "check_suite",
            &a
        ));
        assert!(!matches(
            &sub(None, Some("main"), &["check_suite"]),
            "check_suite",
            &a
        ));
        assert!(!matches(&sub(Some(7), None, &["push"]), "check_suite", &a));
    }

    #[test]
    fn comments_reviews_and_pushes_name_theirs() {
        let comment = json!({"issue": {"number": 5, "pull_request": {"url": "x"}},
                             "repository": {"full_name": "acme/app"}});
        assert_eq!(about(&comment).pull_requests, [5]);
        let on_issue = json!({"issue": {"number": 5}, "repository": {"full_name": "acme/app"}});
        assert!(
            about(&on_issue).pull_requests.is_empty(),
            "not a pull request"
        );
        let review = json!({"pull_request": {"number": 3, "head": {"ref": "feat"}},
                            "repository": {"full_name": "acme/app"}});
        assert_eq!(about(&review).pull_requests, [3]);
        assert_eq!(about(&review).branches, ["feat"]);
        let push = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}});
        assert_eq!(about(&push).branches, ["main"]);
        let tag = json!({"ref": "refs/tags/v1", "repository": {"full_name": "acme/app"}});
        assert!(about(&tag).branches.is_empty());
        let elsewhere =
            json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/other"}});
        assert!(!matches(
            &sub(None, None, &["push"]),
            "push",
            &about(&elsewhere)
        ));
        assert!(!matches(
            &sub(None, None, &["push"]),
            "push",
            &about(&json!({}))
        ));
    }

    #[test]
    fn repositories_are_checked() {
        for ok in ["acme/app", "a-b/c.d_e", "x/.github"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "acme",
            "/app",
            "acme/",
            "a/b/c",
            "a b/c",
            "acme/..",
            &format!("{}/x", "a".repeat(40)),
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }
}
