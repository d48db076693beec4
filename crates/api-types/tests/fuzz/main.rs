//! Fuzz target for the native API's request bodies and stream messages as
//! JSON: whatever parses encodes, and its encoding parses back to the same
//! value. Budget and reproduction: see the `warren-fuzz` crate.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use warren_api_types as api;
use warren_fuzz::{Target, corpus_dir, has_float};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(bytes) else {
        return;
    };
    let encoded = serde_json::to_vec(&value)
        .unwrap_or_else(|e| panic!("{value:?} parsed but does not encode: {e}"));
    let back: T = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
        panic!(
            "encoding {} of {value:?} does not parse: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    // Floats in free-form values may come back one unit in the last place
    // off (see `warren_fuzz::has_float`).
    if !has_float(&encoded) {
        assert_eq!(
            back,
            value,
            "round trip through {}",
            String::from_utf8_lossy(&encoded)
        );
    }
}

fn messages(bytes: &[u8]) {
    round_trip::<api::CreateSandboxRequest>(bytes);
    round_trip::<api::CreateSnapshotRequest>(bytes);
    round_trip::<api::RollbackRequest>(bytes);
    round_trip::<api::ForkRequest>(bytes);
    round_trip::<api::SetTimeoutRequest>(bytes);
    round_trip::<api::ExecRequest>(bytes);
    round_trip::<api::ExecEvent>(bytes);
    round_trip::<api::PtyClientMessage>(bytes);
    round_trip::<api::PtyServerMessage>(bytes);
    round_trip::<api::TagTemplateRequest>(bytes);
    round_trip::<api::SetTemplateAliasRequest>(bytes);
    round_trip::<api::BuildEvent>(bytes);
    round_trip::<api::SendEventRequest>(bytes);
    round_trip::<api::WakeRequest>(bytes);
    round_trip::<api::AckRequest>(bytes);
    round_trip::<api::CreateHookRequest>(bytes);
    round_trip::<api::CreateTimerRequest>(bytes);
    round_trip::<api::SetPoolRequest>(bytes);
    round_trip::<api::SetQuotaRequest>(bytes);
    round_trip::<api::SetSecretRequest>(bytes);
    round_trip::<api::CreateTeamRequest>(bytes);
    round_trip::<api::CreateUserRequest>(bytes);
    round_trip::<api::CreateKeyRequest>(bytes);
    round_trip::<api::CreateVolumeRequest>(bytes);
    round_trip::<api::CreateWebhookRequest>(bytes);
    round_trip::<api::UpdateNetworkRequest>(bytes);
}

#[test]
fn fuzz_native_messages() {
    Target::new(
        "native_messages",
        corpus_dir(env!("CARGO_MANIFEST_DIR"), "native_messages"),
    )
    .tokens([
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
        "1e999",
        "0.5",
        "18446744073709551616",
        "\"type\":",
        "\"stdin\"",
        "\"resize\"",
        "\"cols\":",
        "\"cmd\":",
        "\"args\":",
        "\"env\":",
        "\"cwd\":",
        "\"timeout_s\":",
        "\"name\":",
        "\"internet\":",
        "\"allow\":",
        "\"schedule\":",
        "\"every_s\":",
        "\"url\":",
        "\"events\":",
        "\"scopes\":",
        "\"role\":",
        "\"\\ud800\"",
    ])
    .run(messages);
}
