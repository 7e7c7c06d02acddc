//! Shared support for integration tests. Include it from a test file with
//! `mod support;`.

#![allow(dead_code)]

pub mod bus;
pub mod daemon;
pub mod netns;

#[allow(unused_imports)]
pub use netns::{Netns, Node, Topology, privileged, veth, wait_until};

/// Runs `f` to completion on a fresh current-thread tokio runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(f)
}
