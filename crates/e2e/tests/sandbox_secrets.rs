//! Secrets inside real sandboxes: every sandbox trusts the installation's
//! Warren CA (certificate only, never its key), and keeps trusting it
//! exactly once across pause and resume.

use serde_json::json;
use warren_e2e::Daemon;

#[tokio::test]
async fn sandbox_trusts_the_warren_ca_once_across_pause_and_resume() {
    let d = Daemon::with_base().await;
    let ca = std::fs::read_to_string(d.data_dir().join("secrets/warren-ca.crt")).unwrap();
    let sb = d.create_sandbox(json!({})).await;

    let check = "\
        cat /usr/local/share/ca-certificates/warren-ca.crt; \
        echo \"count=$(grep -c \"$(sed -n 2p /usr/local/share/ca-certificates/warren-ca.crt)\" /etc/ssl/certs/ca-certificates.crt)\"; \
        echo \"env=$SSL_CERT_FILE $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS\"; \
        python3 -c 'import ssl; print(\"python=\" + str(any(\"Warren CA\" in str(c[\"subject\"]) for c in ssl.create_default_context().get_ca_certs())))'; \
        grep -rl 'PRIVATE KEY' /usr/local/share/ca-certificates /etc/ssl/certs 2>/dev/null | head -1; echo end";
    let expect = |out: &str| {
        assert!(
            out.starts_with(ca.trim_end()),
            "installed certificate differs:\n{out}"
        );
        assert!(out.contains("count=1\n"), "{out}");
        assert!(
            out.contains(
                "env=/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/warren-ca.crt\n"
            ),
            "{out}"
        );
        assert!(out.contains("python=True\n"), "{out}");
        assert!(
            out.ends_with("\nend\n"),
            "a key file is in the trust store: {out}"
        );
    };
    let out = d.sh(&sb.id, check).await;
    expect(&out.stdout_str());

    let resp = d
        .post(&format!("/v1/sandboxes/{}/pause", sb.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let resp = d
        .post(&format!("/v1/sandboxes/{}/resume", sb.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let out = d.sh(&sb.id, check).await;
    expect(&out.stdout_str());
}
