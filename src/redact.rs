//! How configured addresses and foreign error texts are shown to people: the one place
//! that masks credentials. Every URL that reaches an answer, a log line, a metric
//! label or the status page goes through [`url`]; every error text that may quote a
//! URL (an HTTP client's error names the URL it was sending to) goes through [`text`]
//! or [`error`].
//!
//! Masked: the password of the userinfo (`user:***@`; a userinfo without a password is
//! a user name, and stays), and the value of query parameters that commonly carry a
//! secret (`password`, `token`, `secret`, `key`, …). A password holding an unencoded
//! `/` or `@` is masked whole: everything between `://` and the last `@` before the
//! query is treated as userinfo.

/// Query parameters whose values are masked.
const SECRET_PARAMS: [&str; 9] = [
    "password",
    "passwd",
    "pass",
    "sslpassword",
    "token",
    "access_token",
    "secret",
    "key",
    "api_key",
];

/// What masked parts are replaced by.
pub const MASK: &str = "***";

/// `scheme://user:secret@host/…?token=t` → `scheme://user:***@host/…?token=***`. A
/// value without a scheme (`user:pw@host:port`) is masked the same way.
pub fn url(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, value),
    };
    let (before_query, query) = match rest.find(['?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = String::with_capacity(value.len());
    if let Some(s) = scheme {
        out.push_str(s);
        out.push_str("://");
    }
    match before_query.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) if !user.contains('/') => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                Some(_) => out.push_str(MASK),
                None if userinfo.contains('/') => out.push_str(MASK),
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(before_query),
    }
    out.push_str(&mask_query(query));
    out
}

/// `scheme://host[:port]` of a URL, and nothing else: how a receiver outside (a
/// notifier's webhook or broker, an Alertmanager) is shown. Their paths and queries
/// carry the secret themselves (an ntfy topic, a Home Assistant webhook id, a Slack,
/// Discord or Telegram token, `?auth=`), so no part after the authority is shown,
/// and no user name either. A value that is not a URL shows as `***`.
pub fn origin(value: &str) -> String {
    let Ok(u) = reqwest::Url::parse(value) else {
        return MASK.to_string();
    };
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
        (Some(h), None) => format!("{}://{h}", u.scheme()),
        (None, _) => format!("{}://{MASK}", u.scheme()),
    }
}

/// Text from outside (a receiver's or Alertmanager's answer), fit for a log line or
/// an answer: at most `max` characters, control characters escaped (`\n`, `\u{1b}`),
/// so it cannot forge a log line or drive a terminal.
pub fn foreign(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Mask the values of secret-bearing parameters in `?a=b&c=d#frag` (kept otherwise).
fn mask_query(query: &str) -> String {
    let Some(params) = query.strip_prefix('?') else {
        return query.to_string();
    };
    let (params, fragment) = match params.find('#') {
        Some(i) => params.split_at(i),
        None => (params, ""),
    };
    let masked: Vec<String> = params
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("?{}{fragment}", masked.join("&"))
}

/// `text` with every URL in it (`scheme://…` up to whitespace, a quote or a closing
/// bracket) passed through [`url`].
pub fn text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-` and `.` just before `://`.
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ']'))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The deepest cause of an error chain (the part a person can act on, such as
/// "Connection refused"), with any URL in it masked.
pub fn error(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    text(&cur.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_users_kept() {
        assert_eq!(
            url("postgres://app:s3cret@db:5432/watchpost"),
            "postgres://app:***@db:5432/watchpost"
        );
        assert_eq!(
            url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(url("http://user@host/x"), "http://user@host/x");
        assert_eq!(url("http://host:8080/x"), "http://host:8080/x");
        assert_eq!(url("user:pw@exporter:9121"), "user:***@exporter:9121");
        assert_eq!(url("no url at all"), "no url at all");
    }

    #[test]
    fn unencoded_slashes_and_ats_in_a_password_are_masked_whole() {
        assert_eq!(url("http://u:p/ss@host/x"), "http://u:***@host/x");
        assert_eq!(url("http://u:p@ss@host/x"), "http://u:***@host/x");
        assert_eq!(url("http://to/ken@host"), "http://***@host");
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        assert_eq!(
            url("postgres://db/w?sslmode=require&password=pw&Token=t#f"),
            "postgres://db/w?sslmode=require&password=***&Token=***#f"
        );
    }

    #[test]
    fn urls_inside_a_text_are_masked() {
        assert_eq!(
            text("error sending request for url (http://ai:AIpass@127.0.0.1:9/health): refused"),
            "error sending request for url (http://ai:***@127.0.0.1:9/health): refused"
        );
        assert_eq!(
            text("Get \"https://a:b@x/y\" and redis://:p@r:1 too"),
            "Get \"https://a:***@x/y\" and redis://:***@r:1 too"
        );
        assert_eq!(text("plain"), "plain");
    }

    #[test]
    fn a_receiver_outside_shows_only_its_scheme_host_and_port() {
        for (url, shown) in [
            ("https://ntfy.sh/my-secret-topic", "https://ntfy.sh"),
            (
                "https://ntfy.example:8443/topic?auth=tk_abc",
                "https://ntfy.example:8443",
            ),
            (
                "http://homeassistant.local:8123/api/webhook/abcdef0123",
                "http://homeassistant.local:8123",
            ),
            (
                "https://hooks.slack.com/services/T0/B0/XXXX",
                "https://hooks.slack.com",
            ),
            (
                "https://api.telegram.org/bot123:AAE/sendMessage",
                "https://api.telegram.org",
            ),
            (
                "https://u:pw@example.com/x?code=1&apikey=2",
                "https://example.com",
            ),
            ("mqtt://user:secret@broker:1883", "mqtt://broker:1883"),
            ("not a url", "***"),
        ] {
            assert_eq!(origin(url), shown, "{url}");
        }
    }

    #[test]
    fn foreign_text_cannot_forge_a_log_line() {
        assert_eq!(
            foreign("bad\n2026-12-06T00:00:00Z INFO forged\u{1b}[2J", 100),
            "bad\\n2026-12-06T00:00:00Z INFO forged\\u{1b}[2J"
        );
        assert_eq!(foreign("abcdef", 3), "abc…");
        assert_eq!(foreign("plain words", 100), "plain words");
    }

    #[test]
    fn an_error_shows_its_deepest_cause_masked() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("no route to http://u:pw@h/"));
        assert_eq!(error(&e), "no route to http://u:***@h/");
    }
}
