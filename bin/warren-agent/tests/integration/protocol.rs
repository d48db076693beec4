//! Wire format, authentication and bad input, with raw HTTP requests.

use crate::common;

use warren_envd::Code;
use warren_envd::envelope::{self, FrameDecoder};
use warren_envd::http_api::InitRequest;

use common::Agent;

fn frame(json: &str) -> Vec<u8> {
    envelope::encode_frame(0, json.as_bytes()).unwrap().to_vec()
}

fn frames(body: &[u8]) -> Vec<envelope::Frame> {
    let mut dec = FrameDecoder::default();
    dec.push(body);
    let mut out = Vec::new();
    while let Some(f) = dec.next_frame().unwrap() {
        out.push(f);
    }
    dec.finish().unwrap();
    out
}

#[tokio::test]
async fn root_health_and_raw_stream_wire_format() {
    let agent = Agent::start().await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/health", agent.url))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let resp = http
        .post(format!("{}/process.Process/Start", agent.url))
        .header("Content-Type", "application/connect+json")
        .body(frame(r#"{"process":{"cmd":"/bin/echo","args":["hi"]}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/connect+json");
    let body = resp.bytes().await.unwrap();
    let fs = frames(&body);
    let json: Vec<serde_json::Value> = fs
        .iter()
        .filter(|f| !f.is_end_stream())
        .map(|f| f.json().unwrap())
        .collect();
    assert!(json[0]["event"]["start"]["pid"].as_u64().unwrap() > 0);
    assert_eq!(json[1]["event"]["data"]["stdout"], "aGkK");
    assert_eq!(json[2]["event"]["end"]["exitCode"], 0);
    assert_eq!(json[2]["event"]["end"]["exited"], true);
    let last = fs.last().unwrap();
    assert!(last.is_end_stream());
    assert_eq!(&last.payload[..], b"{}");
}

#[tokio::test]
async fn root_bad_input_gets_typed_errors() {
    let agent = Agent::start().await;
    let http = reqwest::Client::new();
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        http.post(format!("{}{path}", agent.url))
            .header("Content-Type", ct.to_string())
            .body(body)
            .send()
    };
    let code_of = |v: &serde_json::Value| v["code"].as_str().unwrap().to_string();

    let resp = post("/process.Process/Nope", "application/json", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 501);
    assert_eq!(code_of(&resp.json().await.unwrap()), "unimplemented");
    let resp = post("/nope.Service/List", "application/json", b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(code_of(&resp.json().await.unwrap()), "unimplemented");

    let resp = post(
        "/filesystem.Filesystem/Stat",
        "application/json",
        b"{\"path\": 12".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(code_of(&resp.json().await.unwrap()), "invalid_argument");

    let resp = post(
        "/process.Process/SendSignal",
        "application/json",
        br#"{"process":{"pid":"x"}}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);

    let resp = post("/process.Process/List", "application/proto", vec![])
        .await
        .unwrap();
    assert_eq!(code_of(&resp.json().await.unwrap()), "unimplemented");

    // A frame announcing 1 GiB is refused in the end-of-stream frame, not buffered.
    let mut huge = vec![0u8];
    huge.extend_from_slice(&(1u32 << 30).to_be_bytes());
    huge.extend_from_slice(b"{}");
    let resp = post("/process.Process/Start", "application/connect+json", huge)
        .await
        .unwrap();
    let body = resp.bytes().await.unwrap();
    let end = frames(&body).pop().unwrap().end_stream().unwrap();
    assert_eq!(end.error.unwrap().code, Code::ResourceExhausted);

    // A truncated stream request.
    let resp = post(
        "/process.Process/Start",
        "application/connect+json",
        vec![0, 0, 0, 0, 9, b'{'],
    )
    .await
    .unwrap();
    let end = frames(&resp.bytes().await.unwrap())
        .pop()
        .unwrap()
        .end_stream()
        .unwrap();
    assert_eq!(end.error.unwrap().code, Code::InvalidArgument);

    // Malformed JSON inside a frame.
    let resp = post(
        "/process.Process/Start",
        "application/connect+json",
        frame("{not json"),
    )
    .await
    .unwrap();
    let end = frames(&resp.bytes().await.unwrap())
        .pop()
        .unwrap()
        .end_stream()
        .unwrap();
    assert_eq!(end.error.unwrap().code, Code::InvalidArgument);

    let resp = post("/init", "application/json", b"[1,2".to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn root_access_token_is_enforced_after_init() {
    let agent = Agent::start().await;
    let anonymous = agent.client();
    anonymous
        .init(&InitRequest {
            access_token: Some("s3cret".into()),
            ..Default::default()
        })
        .await
        .unwrap();

    assert!(anonymous.health().await.is_ok(), "/health stays open");
    assert_eq!(
        anonymous.list().await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        anonymous
            .read_file_to_vec("/etc/hostname")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let err = anonymous
        .init(&InitRequest {
            access_token: Some("mine".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let wrong = agent.client().with_access_token("nope");
    assert_eq!(
        wrong.list().await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let authed = agent.client().with_access_token("s3cret");
    assert!(authed.list().await.unwrap().is_empty());
    authed
        .init(&InitRequest {
            access_token: Some("rotated".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        authed.list().await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let rotated = agent.client().with_access_token("rotated");
    assert!(rotated.list().await.is_ok());
}

#[tokio::test]
async fn root_signed_file_urls_work_without_the_token() {
    use sha2::Digest;
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.txt");
    std::fs::write(&path, "signed").unwrap();
    agent
        .client()
        .init(&InitRequest {
            access_token: Some("tok".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let p = path.display().to_string();
    let input = warren_envd::http_api::file_signature_input(&p, "read", "root", "tok", None);
    let sig = warren_envd::http_api::file_signature(&sha2::Sha256::digest(input.as_bytes()));
    // The signature is base64: it must travel URL-encoded, as the SDKs send it.
    let get = |signature: String| {
        let signature = signature
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        reqwest::get(format!(
            "{}/files?path={p}&username=root&signature={signature}",
            agent.url
        ))
    };
    let ok = get(sig).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "signed");
    let bad = get("v1_AAAA".into()).await.unwrap();
    assert_eq!(bad.status(), 401);

    // A right signature past its expiry gets envd's answer; a wrong one
    // claiming the same expiry learns nothing about it.
    let past = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 10;
    let input = warren_envd::http_api::file_signature_input(&p, "read", "root", "tok", Some(past));
    let expired = warren_envd::http_api::file_signature(&sha2::Sha256::digest(input.as_bytes()));
    let get_until = |signature: &str| {
        let signature = signature
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        reqwest::get(format!(
            "{}/files?path={p}&username=root&signature={signature}&signature_expiration={past}",
            agent.url
        ))
    };
    for (signature, message) in [
        (expired.as_str(), "signature is already expired"),
        (
            "v1_AAAA",
            "missing or wrong access token: send the token from /init in X-Access-Token",
        ),
    ] {
        let resp = get_until(signature).await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"code": 401, "message": message}));
    }
}
