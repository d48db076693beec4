//! A daemon's table closes its listeners' port numbers to other machines
//! only: a service of the host that listens on a loopback address with the
//! same number (another daemon's API, a test's server) stays reachable.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren_net::{EgressPorts, Firewall};

/// Removes the table however the test ends.
struct Installed(Firewall);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = self.0.remove_blocking();
    }
}

/// Whether a connection to `port` on loopback is answered within 5 s.
async fn answered(listener: &TcpListener) -> bool {
    let port = listener.local_addr().unwrap().port();
    let exchange = async {
        let mut client = TcpStream::connect(("127.0.0.1", port)).await?;
        let (mut server, _) = listener.accept().await?;
        server.write_all(b"up").await?;
        let mut got = [0u8; 2];
        client.read_exact(&mut got).await?;
        std::io::Result::Ok(got == *b"up")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), exchange).await,
        Ok(Ok(true))
    )
}

#[tokio::test]
async fn root_a_loopback_service_sharing_a_daemons_port_numbers_is_reached() {
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dns = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    let state = tempfile::tempdir().unwrap();
    let firewall = Firewall::new(state.path(), "10.79.240.0/20".parse().unwrap())
        .with_sandbox_api_port(port(&api))
        .with_egress_ports(EgressPorts {
            dns: port(&dns),
            proxy: port(&proxy),
        });
    firewall.install().await.unwrap();
    let installed = Installed(firewall);

    let listed = std::process::Command::new("nft")
        .args(["list", "table", "inet", installed.0.table()])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&listed.stdout);
    assert!(
        rules.contains(&format!("tcp dport {} drop", port(&api))),
        "the port is not closed to other machines: {rules}"
    );
    for (what, listener) in [("API", &api), ("DNS", &dns), ("proxy", &proxy)] {
        assert!(
            answered(listener).await,
            "a loopback service on the daemon's {what} port number was cut off"
        );
    }
}
