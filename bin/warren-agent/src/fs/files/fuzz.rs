//! Fuzz target for uploads to `POST /files`: multipart and octet-stream
//! bodies, gzip-encoded or not, with metadata headers, through the agent's
//! own router. The target path is always given in the query, so a field's
//! file name never picks where the harness writes. Budget and
//! reproduction: see the `warren-fuzz` crate.

use std::io::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;
use warren_fuzz::{Target, corpus_dir};

use crate::reaper::Reaper;
use crate::state::AppState;
use crate::users::UserDb;

const BOUNDARY: &str = "XyZ";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// First byte: bit 0 the rest is gzipped by the harness and sent with
/// `Content-Encoding: gzip`; bit 1 the rest is sent with that encoding as
/// it is (a gzip stream under test); bit 2 octet-stream instead of
/// multipart; bit 3 two metadata headers. An octet-stream upload that
/// succeeds wrote exactly the body, decoded.
fn upload(rt: &tokio::runtime::Runtime, router: &axum::Router, dest: &str, input: &[u8]) {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let (compress, raw_gzip, octet, metadata) = (
        flags & 1 != 0,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 8 != 0,
    );
    let body = if compress { gzip(rest) } else { rest.to_vec() };
    let mut req = Request::post(format!("/files?path={dest}&username=fuzz"));
    req = req.header(
        "content-type",
        if octet {
            "application/octet-stream".to_owned()
        } else {
            format!("multipart/form-data; boundary={BOUNDARY}")
        },
    );
    if compress || raw_gzip {
        req = req.header("content-encoding", "gzip");
    }
    if metadata {
        req = req.header("x-metadata-owner", "fuzz").header(
            "x-metadata-k",
            String::from_utf8_lossy(&rest[..rest.len().min(8)])
                .replace(|c: char| !c.is_ascii_graphic(), "_"),
        );
    }
    let response = rt
        .block_on(router.clone().oneshot(req.body(Body::from(body)).unwrap()))
        .unwrap();
    let status = response.status();
    assert!(
        [StatusCode::OK, StatusCode::BAD_REQUEST].contains(&status),
        "status {status}"
    );
    if status == StatusCode::OK && octet && !raw_gzip {
        assert_eq!(
            std::fs::read(dest).unwrap(),
            rest,
            "the file is not the body"
        );
    }
}

#[test]
fn fuzz_file_uploads() {
    let etc = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    std::fs::write(
        etc.path().join("passwd"),
        format!("fuzz:x:{uid}:{gid}::{}:/bin/sh\n", home.path().display()),
    )
    .unwrap();
    std::fs::write(etc.path().join("group"), format!("fuzz:x:{gid}:\n")).unwrap();
    let state = AppState::new(
        UserDb::new(etc.path()),
        Arc::new(Reaper::default()),
        false,
        etc.path().to_path_buf(),
    );
    let router = crate::server::router(Arc::new(state));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dest = home.path().join("up/file.bin").display().to_string();
    let part = |name: &str, file: &str, data: &str| {
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n{data}\r\n"
        )
    };
    let form = format!(
        "{}{}--{BOUNDARY}--\r\n",
        part("other", "x", "skipped"),
        part("file", "a.txt", "hello")
    );
    Target::new(
        "file_uploads",
        corpus_dir(env!("CARGO_MANIFEST_DIR"), "file_uploads"),
    )
    .seed([&[0u8][..], form.as_bytes()].concat())
    .seed([&[1u8][..], form.as_bytes()].concat())
    .seed([&[2u8][..], &gzip(form.as_bytes())].concat())
    .seed([&[4u8 | 8][..], b"plain bytes"].concat())
    .seed([&[4u8 | 2][..], &gzip(b"gzipped bytes")].concat())
    .tokens([
        format!("--{BOUNDARY}\r\n"),
        format!("--{BOUNDARY}--"),
        "Content-Disposition: form-data; name=\"file\"\r\n".to_owned(),
        "; filename=\"".to_owned(),
        "; filename*=UTF-8''%2e%2e".to_owned(),
        "\r\n\r\n".to_owned(),
        "\r\n".to_owned(),
        "Content-Type: text/plain\r\n".to_owned(),
    ])
    .run(|input| upload(&rt, &router, &dest, input));
}
