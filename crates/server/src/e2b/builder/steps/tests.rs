use super::*;

const HASH: &str = "0f4c9a5e1d3b7a2c8e6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f";

fn spec(json: serde_json::Value) -> BuildSpec {
    serde_json::from_value(json).unwrap()
}

fn templates() -> Vec<String> {
    ["base", "code-interpreter", "tiny"]
        .map(String::from)
        .to_vec()
}

#[test]
fn images_map_onto_templates_and_others_name_the_bases() {
    let base_of = |image: &str| base(&spec(serde_json::json!({"fromImage": image})), &templates());
    assert_eq!(base_of("debian:stable").unwrap(), "base");
    assert_eq!(
        base_of("docker.io/library/debian:bookworm").unwrap(),
        "base"
    );
    assert_eq!(base_of("e2bdev/base").unwrap(), "base");
    assert_eq!(base_of("tiny").unwrap(), "tiny");
    assert_eq!(base_of("tiny:v2").unwrap(), "tiny:v2");
    let err = base_of("python:3.12").unwrap_err().0;
    assert!(err.contains("python:3.12 cannot be had here"), "{err}");
    assert!(err.contains("[base, code-interpreter, tiny]"), "{err}");
    let private = spec(serde_json::json!({
        "fromImage": "e2bdev/base",
        "fromImageRegistry": {"type": "registry", "username": "u", "password": "p"}
    }));
    assert!(
        base(&private, &templates())
            .unwrap_err()
            .0
            .contains("no registry")
    );
    let only_tiny = ["tiny".to_owned()];
    let err = base_of_with("debian:12", &only_tiny);
    assert!(err.contains("not built on this host"), "{err}");
    let from_template = spec(serde_json::json!({"fromTemplate": "tiny"}));
    assert_eq!(base(&from_template, &templates()).unwrap(), "tiny");
}

fn base_of_with(image: &str, templates: &[String]) -> String {
    base(&spec(serde_json::json!({"fromImage": image})), templates)
        .unwrap_err()
        .0
}

#[test]
fn steps_run_as_the_default_user_in_its_home_until_told_otherwise() {
    let s = spec(serde_json::json!({
        "fromImage": "debian:stable",
        "steps": [
            {"type": "ENV", "args": ["PATH", "/opt/bin:$PATH", "MODE", "x"]},
            {"type": "RUN", "args": ["apt-get update && apt-get install -y jq", "root"]},
            {"type": "COPY", "args": ["app/*.py", "app/", "", "0755"], "filesHash": HASH},
            {"type": "WORKDIR", "args": ["/srv"]},
            {"type": "USER", "args": ["dev", "true"]},
            {"type": "RUN", "args": ["make"], "force": true},
        ],
        "startCmd": "python3 -m http.server 8000",
        "readyCmd": "curl -s localhost:8000",
    }));
    let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
    let planned = plan(&s, "base".into(), &env).unwrap();
    let steps = &planned.plan.steps;
    let lines: Vec<usize> = steps.iter().map(|s| s.line).collect();
    assert_eq!(lines, [0, 2, 3, 4, 5, 5, 6]);
    assert_eq!(
        steps[0].context.user, "root",
        "the default user is made as root"
    );
    let run = &steps[1];
    assert_eq!(run.context.user, "root");
    assert_eq!(run.context.workdir, "/root");
    assert_eq!(run.context.env["PATH"], "/opt/bin:/usr/bin:/bin");
    let Action::Run(argv) = &run.action else {
        panic!("{:?}", run.action)
    };
    assert_eq!(
        argv.last().unwrap(),
        "apt-get update && apt-get install -y jq"
    );
    let Action::Copy {
        sources,
        dest,
        chown,
        chmod,
    } = &steps[2].action
    else {
        panic!("{:?}", steps[2].action)
    };
    assert_eq!(sources, &[format!("{HASH}/app")]);
    assert_eq!(dest, "/home/user/app/");
    assert_eq!(chown.as_deref(), Some("user:user"));
    assert_eq!(*chmod, Some(0o755));
    assert_eq!(steps[3].action, Action::MakeDir("/srv".into()));
    assert_eq!(steps[6].context.user, "dev");
    assert_eq!(steps[6].context.workdir, "/srv");
    assert_eq!(planned.fresh_from, Some(6));
    assert_eq!(planned.hashes, [HASH]);
    let start = planned.plan.start().unwrap();
    assert_eq!(start.user, "dev");
    assert_eq!(start.cwd, "/srv");
    assert_eq!(start.cmd.last().unwrap(), "python3 -m http.server 8000");
    assert_eq!(start.ready_cmd.as_deref(), Some("curl -s localhost:8000"));
    assert!(planned.plan.env.is_empty(), "ENV holds for the build only");
}

#[test]
fn bad_steps_are_refused_with_their_number() {
    let cases = [
        (
            serde_json::json!({"type": "RUN", "args": []}),
            "step 1 (RUN): needs a command",
        ),
        (
            serde_json::json!({"type": "COPY", "args": ["a", "/b"]}),
            "step 1 (COPY): needs the filesHash",
        ),
        (
            serde_json::json!({"type": "COPY", "args": ["../etc", "/b"], "filesHash": HASH}),
            "stay inside the build context",
        ),
        (
            serde_json::json!({"type": "ENV", "args": ["ONLY"]}),
            "in pairs",
        ),
        (
            serde_json::json!({"type": "USER", "args": ["a;rm -rf /"]}),
            "is not a user name",
        ),
        (
            serde_json::json!({"type": "HEALTHCHECK", "args": ["x"]}),
            "is not an instruction",
        ),
        (
            serde_json::json!({"type": "COPY", "args": ["a", "/b", "", "999"], "filesHash": HASH}),
            "not an octal mode",
        ),
    ];
    for (step, expected) in cases {
        let s = spec(serde_json::json!({"fromTemplate": "base", "steps": [step]}));
        let err = plan(&s, "base".into(), &BTreeMap::new()).unwrap_err().0;
        assert!(err.contains(expected), "{err} lacks {expected}");
    }
}

#[test]
fn a_forced_build_runs_every_step_and_no_start_command_means_none() {
    let s = spec(serde_json::json!({
        "fromTemplate": "base", "force": true,
        "steps": [{"type": "RUN", "args": ["true"]}],
    }));
    let planned = plan(&s, "base".into(), &BTreeMap::new()).unwrap();
    assert_eq!(planned.fresh_from, Some(0));
    assert_eq!(planned.plan.start(), None);
    assert_eq!(planned.plan.user, None);
}
