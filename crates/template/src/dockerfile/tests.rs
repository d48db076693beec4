use std::collections::BTreeMap;

use super::*;

const APP: &str = r#"
ARG BASE=base
FROM $BASE
ARG VERSION=1.0
ENV APP_HOME=/srv/app \
    GREETING="hello world"
WORKDIR $APP_HOME
RUN apt-get update && apt-get install -y --no-install-recommends jq
COPY --chown=user:user app.py conf/ ./
ADD notes.txt /etc/notes.txt
USER user
RUN ["python3", "-c", "print('v${VERSION}')"]
EXPOSE 8080/tcp 9090
CMD ["python3", "app.py"]
LABEL org.example=1
"#;

#[test]
fn reads_a_typical_dockerfile() {
    let args = BTreeMap::from([("VERSION".to_owned(), "2.0".to_owned())]);
    let p = plan(APP, &args).unwrap();
    assert_eq!(p.from, "base");
    assert_eq!(p.env["APP_HOME"], "/srv/app");
    assert_eq!(p.env["GREETING"], "hello world");
    assert!(!p.env.contains_key("VERSION"), "ARGs are not kept");
    assert_eq!(p.workdir.as_deref(), Some("/srv/app"));
    assert_eq!(p.user.as_deref(), Some("user"));
    assert_eq!(p.exposed, [8080, 9090]);
    let kinds: Vec<_> = p.steps.iter().map(|s| (s.line, &s.action)).collect();
    assert_eq!(kinds.len(), 5);
    assert_eq!(kinds[0], (7, &Action::MakeDir("/srv/app".into())));
    assert_eq!(
        kinds[1].1,
        &Action::Run(vec![
            "/bin/sh".into(),
            "-c".into(),
            "apt-get update && apt-get install -y --no-install-recommends jq".into()
        ])
    );
    assert_eq!(
        kinds[2].1,
        &Action::Copy {
            sources: vec!["app.py".into(), "conf/".into()],
            dest: "/srv/app/".into(),
            chown: Some("user:user".into()),
            chmod: None
        }
    );
    assert_eq!(
        kinds[3].1,
        &Action::Copy {
            sources: vec!["notes.txt".into()],
            dest: "/etc/notes.txt".into(),
            chown: None,
            chmod: None
        }
    );
    // The exec form is not substituted by the builder: the ARG is in the env.
    let last = &p.steps[4];
    assert_eq!(last.context.user, "user");
    assert_eq!(last.context.workdir, "/srv/app");
    assert_eq!(last.context.env["VERSION"], "2.0");
    let start = p.start().unwrap();
    assert_eq!(start.cmd, ["python3", "app.py"]);
    assert_eq!(
        (start.ready_port, start.user.as_str(), start.cwd.as_str()),
        (Some(8080), "user", "/srv/app")
    );
}

#[test]
fn without_expose_cmd_is_only_recorded() {
    let p = plan("FROM tiny\nCMD sleep 1\n", &BTreeMap::new()).unwrap();
    assert_eq!(p.cmd, ["/bin/sh", "-c", "sleep 1"]);
    assert_eq!(p.start(), None);
}

#[test]
fn errors_name_their_line() {
    let cases = [
        ("RUN true\n", 1, "before FROM"),
        ("FROM base\nFROM tiny\n", 2, "multi-stage"),
        ("FROM base AS build\n", 1, "named stages"),
        ("FROM scratch\n", 1, "FROM scratch"),
        (
            "FROM base\n\nSTOPSIGNAL SIGINT\n",
            3,
            "STOPSIGNAL is not supported",
        ),
        ("FROM base\nONBUILD RUN x\n", 2, "ONBUILD is not supported"),
        ("FROM base\nCOPY --from=build /a /b\n", 2, "--from"),
        (
            "FROM base\nADD https://example.org/x /x\n",
            2,
            "remote sources",
        ),
        ("FROM base\nADD site.tar.gz /srv\n", 2, "archives"),
        ("FROM base\nCOPY onlyone\n", 2, "source and a destination"),
        ("FROM base\nEXPOSE http\n", 2, "not a port"),
        ("FROM base\nENV 1A=x\n", 2, "not a valid variable"),
        ("FROM base\nRUN [\"a\", 1]\n", 2, "JSON array"),
        ("FROM base\nCOPY --chmod=999 a /b\n", 2, "octal"),
        ("FROM base\nENV A=${B\n", 2, "unclosed"),
        ("", 0, "no FROM"),
    ];
    for (text, line, needle) in cases {
        let err = plan(text, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(err.to_string().contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn paths_resolve_against_workdir_and_never_climb_above_root() {
    assert_eq!(absolute("/srv", "app"), "/srv/app");
    assert_eq!(absolute("/srv", "../../../etc"), "/etc");
    assert_eq!(absolute("/", "./a/./b/"), "/a/b/");
    assert_eq!(absolute("/srv", "/abs"), "/abs");
}

#[test]
fn a_health_check_is_the_ready_check_and_makes_cmd_a_start_command() {
    let text = "FROM base\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost:3000/\nCMD [\"node\", \"server.js\"]\n";
    let p = plan(text, &BTreeMap::new()).unwrap();
    let start = p.start().expect("a start command without EXPOSE");
    assert_eq!(start.ready_port, None);
    assert_eq!(
        start.ready_cmd.as_deref(),
        Some("curl -f http://localhost:3000/")
    );
    let exec_form = plan(
        "FROM base\nHEALTHCHECK CMD [\"test\", \"-e\", \"/tmp/it's up\"]\nCMD sleep 1\n",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        exec_form.ready_cmd.as_deref(),
        Some(r"'test' '-e' '/tmp/it'\''s up'")
    );
    let none = plan(
        "FROM base\nHEALTHCHECK NONE\nCMD sleep 1\n",
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(
        none.start(),
        None,
        "no port and no check: CMD is only recorded"
    );
    let err = plan("FROM base\nHEALTHCHECK curl x\n", &BTreeMap::new()).unwrap_err();
    assert_eq!(err.line, 2);
}
