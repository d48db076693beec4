//! gVisor runtime against real runsc, as root. Each test has its own state
//! directory and /24 pool (`10.201.<n>.0/24`), so they run in parallel.

mod common;

use std::time::Duration;

use common::{INDEX, fixture, http_get, leftovers};
use warren_runtime::Runtime;

const BOOT: Duration = Duration::from_secs(5);

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
