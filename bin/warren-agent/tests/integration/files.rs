//! Files through the envd client and raw HTTP: run as root (CI does).

use crate::common;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use futures::StreamExt;
use warren_envd::Code;
use warren_envd::filesystem::{EventType, FileType, WatchDirRequest, WatchDirResponse};

use common::Agent;

#[tokio::test]
async fn root_text_and_binary_files_round_trip() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = agent.client();
    let text_path = dir.path().join("a/b/c/hello.txt");
    let info = client
        .write_file(text_path.to_str().unwrap(), "héllo\n")
        .await
        .unwrap();
    assert_eq!(
        (info.name.as_str(), info.kind.as_str()),
        ("hello.txt", "file")
    );
    assert_eq!(std::fs::read_to_string(&text_path).unwrap(), "héllo\n");
    assert_eq!(
        client
            .read_file_to_vec(text_path.to_str().unwrap())
            .await
            .unwrap(),
        "héllo\n".as_bytes()
    );

    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let bin_path = dir.path().join("bin.dat");
    client
        .write_file(bin_path.to_str().unwrap(), binary.clone())
        .await
        .unwrap();
    assert_eq!(
        client
            .read_file_to_vec(bin_path.to_str().unwrap())
            .await
            .unwrap(),
        binary
    );

    // Overwrite replaces the content entirely.
    client
        .write_file(bin_path.to_str().unwrap(), "x")
        .await
        .unwrap();
    assert_eq!(std::fs::read(&bin_path).unwrap(), b"x");
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn root_files_are_owned_by_the_requesting_user() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    // nobody writes only where nobody may write.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let client = agent.client().with_user("nobody");
    let path = dir.path().join("new/owned.txt");
    client
        .write_file(path.to_str().unwrap(), "x")
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534);
    assert_eq!(
        std::fs::metadata(path.parent().unwrap()).unwrap().uid(),
        65534
    );
    let made = client
        .make_dir(dir.path().join("d1/d2").to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (made.kind, made.owner.as_str()),
        (FileType::Directory, "nobody")
    );
}

#[tokio::test]
async fn root_fifty_megabytes_stream_both_ways() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = agent.client();
    let path = dir.path().join("big.bin");
    let chunk: bytes::Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let chunks =
        futures::stream::iter((0..50).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    client
        .write_file_stream(path.to_str().unwrap(), chunks)
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 50 * 1024 * 1024);
    let mut stream = client.read_file(path.to_str().unwrap()).await.unwrap();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(
            chunk
                .iter()
                .enumerate()
                .all(|(i, b)| *b == ((total + i) % (1024 * 1024) % 251) as u8)
        );
        total += chunk.len();
    }
    assert_eq!(total, 50 * 1024 * 1024);
}

#[tokio::test]
async fn root_gzip_in_and_out() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("z.txt");
    let content = "compress me ".repeat(1000);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(content.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/files?path={}", agent.url, path.display());
    let resp = http
        .post(&url)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);

    let resp = http
        .get(&url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.bytes().await.unwrap();
    let mut out = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, content);
}

#[tokio::test]
async fn root_multipart_upload_like_the_sdk() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("m/one.txt");
    let boundary = "XbOuNdArY";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\nmultipart body\r\n--{boundary}--\r\n",
        target.display()
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/files", agent.url))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let infos: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        infos,
        serde_json::json!([{"name": "one.txt", "type": "file", "path": target.display().to_string()}])
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "multipart body");
}

#[tokio::test]
async fn root_file_errors_are_typed() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = agent.client();
    let missing = dir.path().join("missing");
    assert_eq!(
        client
            .read_file_to_vec(missing.to_str().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .read_file_to_vec(dir.path().to_str().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        client
            .write_file(dir.path().to_str().unwrap(), "x")
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        client
            .stat(missing.to_str().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // Removing what is not there succeeds, as in envd.
    client.remove(missing.to_str().unwrap()).await.unwrap();
    assert_eq!(
        client
            .make_dir(dir.path().to_str().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(
        client
            .list_dir(missing.to_str().unwrap(), 1)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let resp = reqwest::get(format!("{}/files?path={}", agent.url, missing.display()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 404);
    assert!(body["message"].as_str().unwrap().contains("missing"));
}

#[tokio::test]
async fn root_stat_list_move_remove() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::write(root.join("top.txt"), "12345").unwrap();
    std::fs::write(root.join("a/b/deep.txt"), "").unwrap();
    std::os::unix::fs::symlink(root.join("a"), root.join("link")).unwrap();
    let client = agent.client();
    let r = root.to_str().unwrap();

    let stat = client.stat(&format!("{r}/top.txt")).await.unwrap();
    assert_eq!(
        (stat.kind, stat.size, stat.name.as_str()),
        (FileType::File, 5, "top.txt")
    );
    let link = client.stat(&format!("{r}/link")).await.unwrap();
    assert!(link.is_symlink);
    assert_eq!(
        link.symlink_target.as_deref(),
        Some(root.join("a").to_str().unwrap())
    );
    // The target is the absolute path a link finally leads to, as envd
    // gives it: a relative link, and a link to a link, are resolved; a link
    // to nothing names itself.
    let real = std::fs::canonicalize(root).unwrap();
    std::os::unix::fs::symlink("a/b/deep.txt", root.join("rel")).unwrap();
    std::os::unix::fs::symlink("rel", root.join("chain")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    for (name, target) in [
        ("rel", real.join("a/b/deep.txt")),
        ("chain", real.join("a/b/deep.txt")),
        ("dangling", root.join("dangling")),
    ] {
        let info = client.stat(&format!("{r}/{name}")).await.unwrap();
        assert_eq!(
            info.symlink_target.as_deref(),
            Some(target.to_str().unwrap()),
            "{name}"
        );
    }
    for name in ["rel", "chain", "dangling"] {
        std::fs::remove_file(root.join(name)).unwrap();
    }

    let names = |entries: Vec<warren_envd::filesystem::EntryInfo>| -> Vec<String> {
        entries
            .into_iter()
            .map(|e| e.path.strip_prefix(r).unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(client.list_dir(r, 1).await.unwrap()),
        ["/a", "/link", "/top.txt"]
    );
    assert_eq!(
        names(client.list_dir(r, 2).await.unwrap()),
        ["/a", "/a/b", "/link", "/top.txt"]
    );
    assert_eq!(
        names(client.list_dir(r, 10).await.unwrap()),
        ["/a", "/a/b", "/a/b/c", "/a/b/deep.txt", "/link", "/top.txt"]
    );

    let moved = client
        .rename(&format!("{r}/top.txt"), &format!("{r}/new/dir/moved.txt"))
        .await
        .unwrap();
    assert_eq!(moved.name, "moved.txt");
    assert!(root.join("new/dir/moved.txt").exists() && !root.join("top.txt").exists());
    client.remove(&format!("{r}/a")).await.unwrap();
    assert!(!root.join("a").exists());
}

#[tokio::test]
async fn root_watch_dir_streams_and_buffers_events() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let client = agent.client();
    let req = WatchDirRequest {
        path: dir.path().display().to_string(),
        recursive: true,
        ..Default::default()
    };
    let mut stream = client.watch_dir(&req, None).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        WatchDirResponse::Start(Default::default())
    );
    let id = client.create_watcher(&req).await.unwrap();

    std::fs::write(dir.path().join("sub/new.txt"), "x").unwrap();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|(n, k): &(String, EventType)| n == "sub/new.txt" && *k == EventType::Create)
    {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("no watch event")
            .unwrap()
            .unwrap();
        if let WatchDirResponse::Filesystem(e) = ev {
            seen.push((e.name, e.kind));
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let buffered = client.get_watcher_events(&id).await.unwrap();
    assert!(
        buffered
            .iter()
            .any(|e| e.name == "sub/new.txt" && e.kind == EventType::Create),
        "{buffered:?}"
    );
    assert!(
        client.get_watcher_events(&id).await.unwrap().is_empty(),
        "events are drained once"
    );
    client.remove_watcher(&id).await.unwrap();
    assert_eq!(
        client.get_watcher_events(&id).await.unwrap_err().code(),
        Code::NotFound
    );
}

/// Only regular files are downloaded: a FIFO (which would block until a
/// writer came) and a device (which never ends and has no length) are a
/// prompt 400, and the agent goes on serving.
#[tokio::test]
async fn root_fifos_and_devices_are_not_downloaded() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let client = agent.client();
    for path in [fifo.to_str().unwrap(), "/dev/zero"] {
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_file_to_vec(path),
        )
        .await
        .unwrap_or_else(|_| panic!("reading {path} hung"));
        let err = read.expect_err(path).to_string();
        assert!(err.contains("not a regular file"), "{path}: {err}");
    }
    let ok = dir.path().join("ok.txt");
    std::fs::write(&ok, "still here").unwrap();
    assert_eq!(
        client.read_file_to_vec(ok.to_str().unwrap()).await.unwrap(),
        b"still here"
    );
}

/// The kernel's files say their length is 0 and still have content: they
/// are read to their end, as `cat` would (the agent runs on the host here,
/// so these are the host's, with the same property as the Sentry's).
#[tokio::test]
async fn root_kernel_files_of_length_zero_are_read_whole() {
    let agent = Agent::start().await;
    let client = agent.client();
    for path in ["/proc/sys/kernel/random/boot_id", "/proc/self/status"] {
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0, "{path}");
        let bytes = client.read_file_to_vec(path).await.unwrap();
        assert!(!bytes.is_empty(), "{path} read empty");
    }
    let boot_id = client
        .read_file_to_vec("/proc/sys/kernel/random/boot_id")
        .await
        .unwrap();
    assert_eq!(
        boot_id,
        std::fs::read("/proc/sys/kernel/random/boot_id").unwrap()
    );
    // An empty regular file stays empty.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    assert!(
        client
            .read_file_to_vec(empty.to_str().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}
