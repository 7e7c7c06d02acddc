//! UDP media (ucast, bcast, mcast), bound per interface.
