//! One sandbox's namespace and veth pair, driven by one `ip -batch` per
//! operation.
//!
//! Recipe (see `docs/runtime.md`): the namespace and the veth are created
//! once, at `create`; the sandbox end is born inside the namespace as `eth0`.
//! runsc copies `eth0`'s address and routes into gVisor's netstack when it
//! starts and removes them from the namespace's kernel, so
//! [`configure_inside`] must run before every `runsc run` and `runsc restore`
//! and never while the sandbox runs (the namespace's kernel would then answer
//! for the sandbox's address and break host → sandbox traffic). The host end
//! gets strict reverse-path filtering when it is made and, before every
//! start, again with its address guard ([`crate::source_guard`]), so a
//! sandbox cannot send with a source address other than its own; `remove`
//! deletes the guard with the veth.

use crate::attachment::NetworkAttachment;
use crate::cmd::run_script;
use crate::error::NetError;
use crate::names::{INNER_IFACE, SandboxNames};
use crate::source_guard;

/// Creates the namespace and the veth pair and addresses the host end.
/// Leftovers of an earlier attempt with the same names are removed first.
pub async fn create(names: &SandboxNames, net: &NetworkAttachment) -> Result<(), NetError> {
    if names.netns_exists() || names.host_veth_exists() {
        remove(names).await?;
    }
    let SandboxNames { netns, host_veth } = names;
    let script = format!(
        "netns add {netns}\n\
         link add {host_veth} type veth peer name {INNER_IFACE} netns {netns}\n\
         addr add {host}/{prefix} dev {host_veth}\n\
         link set {host_veth} up\n",
        host = net.gateway,
        prefix = net.prefix_len,
    );
    let made = run_script(
        "creating the sandbox network",
        "ip",
        &["-batch", "-"],
        &script,
    )
    .await;
    if let Err(e) = made.and_then(|()| source_guard::strict_rp_filter(host_veth)) {
        // Leave nothing half-made behind; the original error matters more.
        let _ = remove(names).await;
        return Err(e);
    }
    Ok(())
}

/// (Re)applies the sandbox end's address, links and default route inside the
/// namespace, and the host end's reverse-path filtering and address guard.
/// Call right before `runsc run`/`runsc restore`.
pub async fn configure_inside(
    names: &SandboxNames,
    net: &NetworkAttachment,
) -> Result<(), NetError> {
    source_guard::strict_rp_filter(&names.host_veth)?;
    let script = format!(
        "addr flush dev {INNER_IFACE}\n\
         addr add {sandbox}/{prefix} dev {INNER_IFACE}\n\
         link set {INNER_IFACE} up\n\
         link set lo up\n\
         route replace default via {host} dev {INNER_IFACE}\n",
        sandbox = net.address,
        host = net.gateway,
        prefix = net.prefix_len,
    );
    // Two processes that touch different things: run them side by side.
    let args = ["-n", names.netns.as_str(), "-batch", "-"];
    let (guard, inside) = tokio::join!(
        source_guard::apply(names, net.address),
        run_script("configuring the sandbox interface", "ip", &args, &script)
    );
    guard.and(inside)
}

/// Deletes the veth pair, its address guard and the namespace. Idempotent:
/// does nothing (and starts no process) when neither veth nor namespace
/// exists.
pub async fn remove(names: &SandboxNames) -> Result<(), NetError> {
    if names.host_veth_exists() || names.netns_exists() {
        source_guard::remove(names).await?;
    }
    let mut script = String::new();
    if names.host_veth_exists() {
        script.push_str(&format!("link del {}\n", names.host_veth));
    }
    if names.netns_exists() {
        script.push_str(&format!("netns del {}\n", names.netns));
    }
    if script.is_empty() {
        return Ok(());
    }
    let result = run_script(
        "removing the sandbox network",
        "ip",
        &["-force", "-batch", "-"],
        &script,
    )
    .await;
    // Judge by what is left, not by the exit status: a veth whose peer
    // namespace was just released disappears on its own.
    if names.host_veth_exists() || names.netns_exists() {
        return Err(result.err().unwrap_or_else(|| NetError::Command {
            op: "removing the sandbox network".into(),
            detail: format!(
                "{} or {} still exists after deletion",
                names.host_veth, names.netns
            ),
        }));
    }
    Ok(())
}
