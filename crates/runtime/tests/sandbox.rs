//! gVisor runtime against real runsc, as root. Each test has its own state
//! directory and /24 pool (`10.201.<n>.0/24`), so they run in parallel.

mod common;

use std::time::Duration;

use common::{INDEX, fixture, http_get, leftovers};
use warren_runtime::Runtime;
use warren_runtime::gvisor::{GvisorConfig, GvisorRuntime};

const BOOT: Duration = Duration::from_secs(5);
/// Bound for requests from inside that must succeed, even on a busy host.
const SLOW: Duration = Duration::from_secs(15);

#[tokio::test]
async fn sandbox_start_serves_http_to_the_host() {
    let fx = fixture(1);
    let spec = fx.spec(3);
    fx.rt.create(&spec).await.unwrap();
    let inst = fx.rt.start(&spec.id).await.unwrap();
    assert_eq!(inst.agent_addr.to_string(), "10.201.1.14:49983");
    assert_eq!(http_get(inst.agent_addr, "/", BOOT).unwrap(), INDEX);

    let stats = fx.rt.stats(&spec.id).await.unwrap();
    assert!(stats.pids > 0, "{stats:?}");
    assert!(stats.memory_bytes > 0, "{stats:?}");
    assert_eq!(
        fx.sh(&spec.id, "cat /proc/sys/kernel/hostname").trim(),
        spec.id.as_str()
    );

    fx.rt.destroy(&spec.id).await.unwrap();
    assert!(common::http_get_once(inst.agent_addr, "/").is_err());
    assert_eq!(leftovers(&fx, &spec.id), Vec::<String>::new());
    fx.rt.destroy(&spec.id).await.unwrap();
}

#[tokio::test]
async fn sandbox_network_is_isolated() {
    let fx = fixture(2);
    let (a, b) = (fx.spec(0), fx.spec(1));
    for s in [&a, &b] {
        fx.rt.create(s).await.unwrap();
    }
    let ia = fx.rt.start(&a.id).await.unwrap();
    let ib = fx.rt.start(&b.id).await.unwrap();
    http_get(ia.agent_addr, "/", BOOT).unwrap();
    http_get(ib.agent_addr, "/", BOOT).unwrap();

    // wget itself works: the sandbox reaches its own server.
    assert_eq!(
        fx.wget_inside_within(&a.id, "http://127.0.0.1:49983/", SLOW)
            .unwrap(),
        INDEX
    );
    // Another sandbox is unreachable.
    let other = format!("http://{}/", ib.agent_addr);
    assert!(fx.wget_inside(&a.id, &other).is_err(), "reached {other}");
    // Cloud metadata is unreachable.
    assert!(fx.wget_inside(&a.id, "http://169.254.169.254/").is_err());
    // A host service on the sandbox's own gateway address is unreachable,
    // though the host itself can use it.
    let listener = std::net::TcpListener::bind("10.201.2.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhost secret\n");
        }
    });
    assert_eq!(
        http_get(format!("10.201.2.1:{port}").parse().unwrap(), "/", BOOT).unwrap(),
        "host secret\n"
    );
    let host_url = format!("http://10.201.2.1:{port}/");
    assert!(
        fx.wget_inside(&a.id, &host_url).is_err(),
        "reached {host_url}"
    );

    // Control: without this runtime's nftables table both are reachable, so
    // it is the firewall that blocked them above.
    let table = fx.firewall.table().to_owned();
    let status = std::process::Command::new("nft")
        .args(["delete", "table", "inet", &table])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(fx.wget_inside_within(&a.id, &other, SLOW).unwrap(), INDEX);
    assert_eq!(
        fx.wget_inside_within(&a.id, &host_url, SLOW).unwrap(),
        "host secret\n"
    );

    for s in [&a, &b] {
        fx.rt.destroy(&s.id).await.unwrap();
    }
}

#[tokio::test]
async fn sandbox_writes_never_reach_the_template() {
    let fx = fixture(3);
    let spec = fx.spec(0);
    fx.rt.create(&spec).await.unwrap();
    let inst = fx.rt.start(&spec.id).await.unwrap();
    http_get(inst.agent_addr, "/", BOOT).unwrap();
    fx.sh(
        &spec.id,
        "echo changed > /www/index.html && echo new > /newfile && rm /bin/ls \
         && dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null && sync",
    );
    assert_eq!(http_get(inst.agent_addr, "/", BOOT).unwrap(), "changed\n");
    assert_eq!(fx.sh(&spec.id, "cat /newfile"), "new\n");

    assert_eq!(
        std::fs::read_to_string(fx.rootfs.join("www/index.html")).unwrap(),
        INDEX
    );
    assert!(!fx.rootfs.join("newfile").exists());
    assert!(!fx.rootfs.join("big").exists());
    assert!(fx.rootfs.join("bin/ls").symlink_metadata().is_ok());
    fx.rt.destroy(&spec.id).await.unwrap();
}

#[tokio::test]
async fn sandbox_memory_limit_is_enforced_on_the_sandbox_only() {
    let fx = fixture(4);
    let limits = warren_core::Limits {
        cpus: 1,
        memory_mb: 128,
        pids: 1024,
        ..warren_core::Limits::default()
    };
    let (small, other) = (fx.spec_with(0, limits), fx.spec(1));
    for s in [&small, &other] {
        fx.rt.create(s).await.unwrap();
    }
    let is = fx.rt.start(&small.id).await.unwrap();
    let io = fx.rt.start(&other.id).await.unwrap();
    http_get(is.agent_addr, "/", BOOT).unwrap();
    http_get(io.agent_addr, "/", BOOT).unwrap();

    let meminfo = fx.sh(&small.id, "grep MemTotal /proc/meminfo");
    assert!(meminfo.contains(&(128 * 1024).to_string()), "{meminfo}");

    // Fill memory-backed /dev/shm with twice the limit.
    let out = fx.exec(
        &small.id,
        &[
            "/bin/sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=300M count=1; echo dd-finished",
        ],
    );
    // The sandbox's cgroup OOM-kills it: the allocation never completes
    // and the agent is gone.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("dd-finished"));
    assert!(common::http_get(is.agent_addr, "/", Duration::from_secs(2)).is_err());
    // The other sandbox is unaffected.
    assert_eq!(http_get(io.agent_addr, "/", BOOT).unwrap(), INDEX);

    for s in [&small, &other] {
        fx.rt.destroy(&s.id).await.unwrap();
    }
}

#[tokio::test]
async fn sandbox_checkpoint_and_restore_keep_files_under_same_and_new_id() {
    let fx = fixture(5);
    let spec = fx.spec(0);
    fx.rt.create(&spec).await.unwrap();
    let inst = fx.rt.start(&spec.id).await.unwrap();
    http_get(inst.agent_addr, "/", BOOT).unwrap();
    fx.sh(&spec.id, "echo before-checkpoint > /www/state.txt");
    // An HTTP exchange leaves a TCP connection behind (TIME_WAIT): the
    // checkpoint must still succeed.
    assert_eq!(
        http_get(inst.agent_addr, "/state.txt", BOOT).unwrap(),
        "before-checkpoint\n"
    );

    // Pause: checkpoint and stop, then resume under the same id.
    let images = tempfile::tempdir().unwrap();
    let pause = images.path().join("pause");
    std::fs::create_dir(&pause).unwrap();
    fx.rt.checkpoint(&spec.id, &pause, false).await.unwrap();
    assert!(common::http_get_once(inst.agent_addr, "/").is_err());
    assert!(fx.rt.list_live().await.unwrap().is_empty());
    let t0 = std::time::Instant::now();
    let resumed = fx.rt.restore(&pause, &spec).await.unwrap();
    eprintln!("resume under the same id: {:?}", t0.elapsed());
    assert_eq!(resumed.agent_addr, inst.agent_addr);
    assert_eq!(
        http_get(resumed.agent_addr, "/state.txt", BOOT).unwrap(),
        "before-checkpoint\n"
    );

    // Fork: checkpoint leaving it running, restore under a new id and slot.
    let fork_img = images.path().join("fork");
    std::fs::create_dir(&fork_img).unwrap();
    fx.rt.checkpoint(&spec.id, &fork_img, true).await.unwrap();
    let mut fork = fx.spec(9);
    fork.limits = spec.limits;
    let forked = fx.rt.restore(&fork_img, &fork).await.unwrap();
    assert_ne!(forked.agent_addr, resumed.agent_addr);
    assert_eq!(
        http_get(forked.agent_addr, "/state.txt", BOOT).unwrap(),
        "before-checkpoint\n"
    );
    // Both live, and their writes are separate.
    fx.sh(&fork.id, "echo fork-only > /www/state.txt");
    assert_eq!(
        http_get(resumed.agent_addr, "/state.txt", BOOT).unwrap(),
        "before-checkpoint\n"
    );
    assert_eq!(
        http_get(forked.agent_addr, "/state.txt", BOOT).unwrap(),
        "fork-only\n"
    );
    let mut live: Vec<_> = fx
        .rt
        .list_live()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    live.sort();
    let mut expected = vec![spec.id.clone(), fork.id.clone()];
    expected.sort();
    assert_eq!(live, expected);

    for s in [&spec, &fork] {
        fx.rt.destroy(&s.id).await.unwrap();
        assert_eq!(leftovers(&fx, &s.id), Vec::<String>::new());
    }
}

#[tokio::test]
async fn sandbox_survives_a_runtime_restart() {
    let fx = fixture(6);
    let spec = fx.spec(2);
    fx.rt.create(&spec).await.unwrap();
    let inst = fx.rt.start(&spec.id).await.unwrap();
    http_get(inst.agent_addr, "/", BOOT).unwrap();

    // A second runtime over the same state directory, as after a daemon
    // restart, finds the sandbox and can manage it.
    let again = GvisorRuntime::new(GvisorConfig::new(&fx.state_dir)).unwrap();
    assert_eq!(again.list_live().await.unwrap(), vec![inst.clone()]);
    assert!(again.stats(&spec.id).await.unwrap().pids > 0);
    drop(again);
    // The firewall table is the daemon's: no runtime removes it.
    let table = fx.firewall.table().to_owned();
    assert!(nft_table_exists(&table));
    assert_eq!(http_get(inst.agent_addr, "/", BOOT).unwrap(), INDEX);

    fx.rt.stop(&spec.id).await.unwrap();
    assert!(fx.rt.list_live().await.unwrap().is_empty());
    fx.rt.destroy(&spec.id).await.unwrap();
    assert!(
        nft_table_exists(&table),
        "the last destroy removed the table"
    );
}

#[tokio::test]
async fn sandbox_create_destroy_cycles_leave_nothing_behind() {
    let fx = fixture(7);
    let mut latencies = Vec::new();
    for i in 0..20u32 {
        let spec = fx.spec(i % 3);
        let t0 = std::time::Instant::now();
        fx.rt.create(&spec).await.unwrap();
        // Every fourth sandbox is destroyed before it ever started.
        if i % 4 != 3 {
            let inst = fx.rt.start(&spec.id).await.unwrap();
            latencies.push(t0.elapsed());
            assert_eq!(http_get(inst.agent_addr, "/", BOOT).unwrap(), INDEX);
        }
        fx.rt.destroy(&spec.id).await.unwrap();
        assert_eq!(leftovers(&fx, &spec.id), Vec::<String>::new(), "cycle {i}");
        fx.rt.destroy(&spec.id).await.unwrap();
    }
    latencies.sort();
    eprintln!(
        "create+start: median {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    assert!(nft_table_exists(fx.firewall.table()));
    let runsc = std::process::Command::new("runsc")
        .arg("--root")
        .arg(fx.rt.runsc_root())
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&runsc.stdout).trim(), "");
}

fn nft_table_exists(table: &str) -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn sandbox_freeze_stops_every_task_and_thaw_goes_on() {
    let fx = fixture(8);
    let spec = fx.spec(1);
    fx.rt.create(&spec).await.unwrap();
    let inst = fx.rt.start(&spec.id).await.unwrap();
    http_get(inst.agent_addr, "/", BOOT).unwrap();

    fx.rt.freeze(&spec.id).await.unwrap();
    let before = fx.rt.stats(&spec.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = fx.rt.stats(&spec.id).await.unwrap();
    assert_eq!(
        before.cpu_usage_ns, after.cpu_usage_ns,
        "a frozen sandbox ran"
    );
    assert!(after.memory_bytes > 0, "a frozen sandbox keeps its memory");
    assert!(common::http_get_once(inst.agent_addr, "/").is_err());
    assert_eq!(fx.rt.list_live().await.unwrap(), vec![inst.clone()]);

    let thawed = fx.rt.thaw(&spec.id).await.unwrap();
    assert_eq!(thawed.agent_addr, inst.agent_addr);
    assert_eq!(http_get(inst.agent_addr, "/", BOOT).unwrap(), INDEX);

    // Stopping or destroying a frozen sandbox never waits on it.
    fx.rt.freeze(&spec.id).await.unwrap();
    fx.rt.stop(&spec.id).await.unwrap();
    assert!(fx.rt.list_live().await.unwrap().is_empty());
    let other = fx.spec(2);
    fx.rt.create(&other).await.unwrap();
    let other_inst = fx.rt.start(&other.id).await.unwrap();
    http_get(other_inst.agent_addr, "/", BOOT).unwrap();
    fx.rt.freeze(&other.id).await.unwrap();
    fx.rt.destroy(&other.id).await.unwrap();
    assert_eq!(leftovers(&fx, &other.id), Vec::<String>::new());
    fx.rt.destroy(&spec.id).await.unwrap();
    assert_eq!(leftovers(&fx, &spec.id), Vec::<String>::new());
}
