//! The pure cluster engine: membership, resource groups, negotiation and
//! split-brain resolution. No tokio, no sockets, no clock reads.
