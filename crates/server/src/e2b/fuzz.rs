//! Fuzz targets for request bodies as the daemon reads them: E2B's
//! (sandbox creation with its network settings, the other control calls,
//! template build specs, page tokens) and the native API's sandbox
//! creation, both down to the validated parameters a create runs with.
//! Budget and reproduction: see the `warren-fuzz` crate.

use std::collections::BTreeMap;

use warren_api_types::CreateSandboxRequest;
use warren_core::network::{Cidr, NetRule, NetworkPolicy};
use warren_core::{KeyId, Limits, Role, TeamId, UserId};
use warren_fuzz::{Target, corpus_dir};

use super::builder::steps::{self, BuildSpec};
use super::control::create_params;
use super::network::to_policy;
use super::paging::Cursor;
use super::wire;
use crate::auth::{ApiKey, Caller};
use crate::service::{CreateParams, Dispatcher};

fn target(name: &str) -> Target {
    Target::new(name, corpus_dir(env!("CARGO_MANIFEST_DIR"), name)).tokens([
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "null",
        "true",
        "false",
        "-1",
        "0",
        "1e999",
        "18446744073709551616",
        "\"\"",
        "\"../..\"",
        "\"\\u0000\"",
        "\"a=b\"",
    ])
}

fn caller() -> Caller {
    Caller {
        team: TeamId::generate(),
        user: UserId::generate(),
        key_id: KeyId::generate(),
        role: Role::Member,
        permissions: Role::Member.grants(false),
        sandbox: None,
    }
}

fn cidrs(rules: &[NetRule]) -> impl Iterator<Item = &Cidr> {
    rules.iter().filter_map(|r| match r {
        NetRule::Cidr(c) => Some(c),
        _ => None,
    })
}

/// Every E2B body, parsed and taken as far as the daemon takes it before
/// anything runs.
fn e2b_bodies(caller: &Caller, bytes: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<wire::NewSandbox>(bytes) {
        if let Ok(Some(policy)) = to_policy(req.allow_internet_access, req.network.as_ref(), None) {
            policy.validate().expect("a mapped policy is valid");
            // E2B's allow wins: no denied range overlaps an allowed one.
            for allowed in cidrs(&policy.allow) {
                for denied in cidrs(&policy.deny) {
                    assert!(
                        !denied.contains(allowed.addr()) && !allowed.contains(denied.addr()),
                        "{denied:?} is denied inside the allowed {allowed:?}"
                    );
                }
            }
        }
        let _ = create_params(req, None, caller, &Limits::default(), &Default::default());
    }
    let _ = serde_json::from_slice::<wire::ConnectSandbox>(bytes);
    let _ = serde_json::from_slice::<wire::PauseRequest>(bytes);
    let _ = serde_json::from_slice::<wire::ForkRequest>(bytes);
    let _ = serde_json::from_slice::<wire::SnapshotRequest>(bytes);
    let _ = serde_json::from_slice::<wire::TimeoutRequest>(bytes);
    let _ = serde_json::from_slice::<wire::RefreshRequest>(bytes);
    if let Ok(spec) = serde_json::from_slice::<BuildSpec>(bytes) {
        let ready = ["base".to_owned(), "code-interpreter".to_owned()];
        if let Ok(from) = steps::base(&spec, &ready) {
            let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
            if let Ok(planned) = steps::plan(&spec, from, &env) {
                for hash in &planned.hashes {
                    assert!(steps::is_files_hash(hash), "COPY names {hash:?}");
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(cursor) = Cursor::parse(text) {
            assert_eq!(
                Cursor::parse(&cursor.token()).unwrap().token(),
                cursor.token()
            );
        }
        if let Some(key) = ApiKey::from_e2b_form(text) {
            let _ = ApiKey::parse(&key);
        }
        let _ = ApiKey::parse(text);
    }
}

#[test]
fn fuzz_e2b_request_bodies() {
    let caller = caller();
    target("e2b_request_bodies")
        .tokens([
            "\"templateID\":",
            "\"network\":",
            "\"denyOut\":[\"0.0.0.0/0\"]",
            "\"allowOut\":[\"10.0.0.0/8\"]",
            "\"::/0\"",
            "\"rules\":",
            "\"transform\":",
            "\"headers\":",
            "\"${e2b.secrets.TOKEN}\"",
            "\"steps\":",
            "\"type\":\"COPY\"",
            "\"args\":",
            "\"filesHash\":",
            "\"fromImage\":",
            "\"e2bdev/base:latest\"",
            "\"allow_internet_access\":false",
            "\"envVars\":",
            "\"volumeMounts\":",
        ])
        .run(|bytes| e2b_bodies(&caller, bytes));
}

/// The native create body down to its validated parameters, and a network
/// policy as `PUT …/network` reads it.
fn native_bodies(dispatcher: &Dispatcher, bytes: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<CreateSandboxRequest>(bytes) {
        let _ = CreateParams::from_request(req, dispatcher.clone(), &Limits::default());
    }
    if let Ok(policy) = serde_json::from_slice::<NetworkPolicy>(bytes)
        && policy.validate().is_ok()
    {
        let again: NetworkPolicy =
            serde_json::from_slice(&serde_json::to_vec(&policy).unwrap()).unwrap();
        assert_eq!(again, policy);
    }
}

#[test]
fn fuzz_native_request_bodies() {
    let dispatcher = Dispatcher::from(&caller());
    target("native_request_bodies")
        .tokens([
            "\"template\":",
            "\"cpus\":",
            "\"memory_mb\":",
            "\"disk_mb\":",
            "\"timeout_s\":",
            "\"env\":",
            "\"metadata\":",
            "\"snapshot\":",
            "\"network\":",
            "\"internet\":\"deny\"",
            "\"allow\":[\"*.example.com\"]",
            "\"deny\":[\"203.0.113.7/32\"]",
            "\"inject\":",
            "\"public_ports\":[0,65535]",
            "\"volumes\":",
            "\"on_idle\":\"pause\"",
        ])
        .run(|bytes| native_bodies(&dispatcher, bytes));
}
