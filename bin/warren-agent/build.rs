//! Routes the agent's `epoll_ctl` and `epoll_wait` calls through
//! `src/epoll_filter.rs` (see its docs). Only the binary (and its unit
//! tests) defines the wrappers, so only it gets the flags.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--wrap=epoll_ctl,--wrap=epoll_wait");
}
