//! Resource names for the Python-level I/O detection (`frontrun._io`).
//!
//! The preload library names the same resources from the addresses libc
//! sees (`preload/src/names.rs`); an operation seen by both must produce the
//! same name, so the address formatting lives here in Rust, with the same
//! `Display` of `Ipv4Addr`/`Ipv6Addr` the library uses, rather than being
//! re-derived from Python's spelling of an address.

use std::net::IpAddr;

/// `socket:<ip>:<port>` or `socket:[<ipv6>]:<port>` for a numeric host, as
/// the preload library spells the peer of a connected socket. A zone
/// (`fe80::1%eth0`) is dropped: the library names the address alone.
/// `None` when `host` is not a numeric address.
pub fn inet_socket_name(host: &str, port: u16) -> Option<String> {
    let bare = host.split('%').next().unwrap_or(host);
    let bare = bare
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(bare);
    match bare.parse::<IpAddr>().ok()? {
        IpAddr::V4(ip) => Some(format!("socket:{ip}:{port}")),
        IpAddr::V6(ip) => Some(format!("socket:[{ip}]:{port}")),
    }
}
