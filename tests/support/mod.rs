//! Shared support for integration tests. Include it from a test file with
//! `mod support;`.

#![allow(dead_code)]

pub mod bus;
pub mod daemon;
pub mod netns;

#[allow(unused_imports)]
pub use netns::{Netns, Node, Topology, privileged, veth, wait_until};
