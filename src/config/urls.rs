//! Addresses in the configuration: host names, origins, `host[:port]` authorities and
//! HTTP URLs, normalised the way browsers send them (the site policy compares with
//! these).

pub(super) fn is_origin(value: &str) -> bool {
    normalise_origin(value).is_some()
}

pub(super) fn is_host_name(value: &str) -> bool {
    value == "*" || normalise_host(value).is_some()
}

/// A host name or IP literal, lower-cased (IPv6 in brackets), or `None` when `value`
/// is not one (no scheme, port, path or wildcard).
pub fn normalise_host(value: &str) -> Option<String> {
    let v = value.trim().to_ascii_lowercase();
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| format!("[{ip}]"));
    }
    if let Ok(ip) = v.parse::<std::net::Ipv6Addr>() {
        return Some(format!("[{ip}]"));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (v.len() <= 253 && v.split('.').all(label_ok)).then_some(v)
}

/// Split `host[:port]` (IPv6 in brackets) into a normalised host and the port.
pub fn split_authority(value: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (h, rest) = value.split_at(end + 1);
        match rest {
            "" => (h, None),
            _ => (h, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => None,
    };
    Some((normalise_host(host)?, port))
}

/// An origin `scheme://host[:port]` normalised the way browsers send it (lower case,
/// default port omitted), or `None` when `value` is not one.
pub fn normalise_origin(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_authority(rest)?;
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

pub(super) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    matches!(rest, Some(host) if !host.is_empty() && !host.starts_with('/'))
}
