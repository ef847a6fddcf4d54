//! E-mail over SMTP: `url` is `smtps://user:password@host:465` (TLS from the first
//! byte) or `smtp://user:password@host:587` (STARTTLS); `from` and `to` (one or
//! more addresses, separated by commas) are options. Credentials only travel
//! encrypted: over `smtp://` STARTTLS is required when a password is set, unless the
//! server is on this machine (a local relay); without credentials it is used when
//! the server offers it. The address is shown as `smtps://host:465`.

use std::net::IpAddr;

use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::alerts::Identity;
use crate::notify::channel::DeliveryError;
use crate::notify::kind::{Deliver, Make, NotifierKind, Opt, Setup};
use crate::notify::message::{said, Entry};

pub static KIND: NotifierKind = NotifierKind {
    name: "email",
    schemes: &["smtp", "smtps"],
    options: &[
        Opt {
            name: "from",
            required: true,
            what: "the sender's address, such as watchpost@example.org",
            valid: |v| v.parse::<Mailbox>().is_ok(),
        },
        Opt {
            name: "to",
            required: true,
            what: "1 to 10 addresses, separated by commas",
            valid: |v| recipients(v).is_some(),
        },
    ],
    make: Make::Own(|s| Ok(Box::new(Email::new(s)?))),
};

/// The most of an error kept for `last_error`.
const ERROR_TEXT: usize = 200;

struct Email {
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

fn recipients(v: &str) -> Option<Vec<Mailbox>> {
    let to: Vec<Mailbox> = v
        .split(',')
        .map(|a| a.trim().parse().ok())
        .collect::<Option<_>>()?;
    (1..=10).contains(&to.len()).then_some(to)
}

impl Email {
    fn new(s: &Setup) -> Result<Self, String> {
        let url = reqwest::Url::parse(&s.cfg.url).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("no host")?.trim_matches(['[', ']']);
        let wrapped = url.scheme() == "smtps";
        let tls = TlsParameters::new(host.to_string()).map_err(|e| e.to_string())?;
        let local = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |p: &str| {
                percent_decode(p)
            };
            Credentials::new(
                decode(url.username()),
                decode(url.password().unwrap_or("")),
            )
        });
        let tls = match (wrapped, credentials.is_some() && !local) {
            (true, _) => Tls::Wrapper(tls),
            (false, true) => Tls::Required(tls),
            (false, false) => Tls::Opportunistic(tls),
        };
        let port = url.port().unwrap_or(if wrapped { 465 } else { 587 });
        let mut smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if let Some(c) = credentials {
            smtp = smtp.credentials(c);
        }
        Ok(Self {
            smtp: smtp.build(),
            from: s.option("from").parse().map_err(|_| "bad from address")?,
            to: recipients(s.option("to")).ok_or("bad to addresses")?,
        })
    }

    fn message(&self, e: &Entry, who: &Identity) -> Result<Message, String> {
        let said = said(e);
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(said.title)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            m = m.to(to.clone());
        }
        m.body(format!("{}\n\n{}#alerts\n", said.body, who.external_url))
            .map_err(|e| e.to_string())
    }
}

/// `%xx` escapes of a URL's user or password decoded (`p%40ss` is `p@ss`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Deliver for Email {
    fn deliver<'a>(
        &'a self,
        e: &'a Entry,
        who: &'a Identity,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = self.message(e, who).map_err(|why| DeliveryError::Refused {
                status: 422,
                body: crate::redact::foreign(&why, ERROR_TEXT),
            })?;
            let shown = |err: &lettre::transport::smtp::Error| {
                crate::redact::foreign(&crate::redact::text(&err.to_string()), ERROR_TEXT)
            };
            match self.smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(err) => match err.status() {
                    Some(code) if err.is_permanent() => Err(DeliveryError::Refused {
                        status: u16::from(code),
                        body: shown(&err),
                    }),
                    _ => Err(DeliveryError::Unreachable(shown(&err))),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_one_to_ten_addresses() {
        assert_eq!(recipients("a@example.org, b@example.org").map(|v| v.len()), Some(2));
        assert!(recipients("").is_none());
        assert!(recipients("not an address").is_none());
        assert!(recipients(&["a@example.org"; 11].join(",")).is_none());
    }

    #[test]
    fn a_password_may_hold_escaped_characters() {
        assert_eq!(percent_decode("p%40ss%2Fw"), "p@ss/w");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
