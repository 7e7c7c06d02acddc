//! Floating addresses over rtnetlink, announced with GARP/NA.
