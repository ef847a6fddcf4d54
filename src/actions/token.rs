//! One-tap action links (pure): a *grant* (which action, on which alert, until when,
//! and a nonce that makes it single-use) signed with HMAC-SHA256 under the shared
//! action key. The token is `<payload>.<mac>`, both base64url without padding; the
//! payload is the grant as JSON. Only a token signed with the key verifies, so the
//! token alone authorises that one action on that one alert.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::Source;
use crate::names::closed_set;

/// The longest token taken (a real one is about 300 characters).
pub const MAX_TOKEN: usize = 1024;

closed_set! {
    /// What a link does.
    #[derive(Deserialize)]
    pub enum ActionKind {
        /// Snooze what the alert is about for an hour.
        SnoozeHour = "snooze_1h",
        /// Snooze what the alert is about for eight hours.
        SnoozeEightHours = "snooze_8h",
        /// Mark this episode of the alert acknowledged: no repeat, no silence.
        Acknowledge = "acknowledge",
    }
}

impl ActionKind {
    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::SnoozeHour => "Snooze 1 h",
            Self::SnoozeEightHours => "Snooze 8 h",
            Self::Acknowledge => "Acknowledge",
        }
    }

    /// How long a snooze lasts, in seconds (`None`: not a snooze).
    pub fn snooze_seconds(self) -> Option<f64> {
        match self {
            Self::SnoozeHour => Some(3600.0),
            Self::SnoozeEightHours => Some(8.0 * 3600.0),
            Self::Acknowledge => None,
        }
    }
}

/// What a link allows: one action on one alert, until `expires_at`, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "a")]
    pub action: ActionKind,
    /// The alert (its id, where it was told from) and what identifies it anywhere.
    #[serde(rename = "i")]
    pub alert_id: String,
    #[serde(rename = "f")]
    pub fingerprint: String,
    #[serde(rename = "n")]
    pub alertname: String,
    #[serde(rename = "s")]
    pub source: Source,
    #[serde(rename = "e", with = "chrono::serde::ts_seconds")]
    pub expires_at: DateTime<Utc>,
    /// Random: a used link is remembered by it.
    #[serde(rename = "k")]
    pub nonce: String,
}

/// Why a token does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token, or not signed with the key.
    Invalid,
    /// Signed, and past its time.
    Expired(DateTime<Utc>),
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`.
pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The token of `grant` under `key`.
pub fn sign(key: &[u8], grant: &Grant) -> String {
    // A grant of strings, a source and a time always serialises.
    let json = serde_json::to_vec(grant).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mac = URL_SAFE_NO_PAD.encode(hmac(key, payload.as_bytes()));
    format!("{payload}.{mac}")
}

/// The grant `token` carries, if it was signed with `key` and holds at `now`.
pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<Grant, Refusal> {
    if token.len() > MAX_TOKEN {
        return Err(Refusal::Invalid);
    }
    let (payload, mac) = token.split_once('.').ok_or(Refusal::Invalid)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| Refusal::Invalid)?;
    let expected = hmac(key, payload.as_bytes());
    // Constant time: the comparison does not stop at the first difference.
    if mac.len() != expected.len()
        || mac
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return Err(Refusal::Invalid);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| Refusal::Invalid)?;
    let grant: Grant = serde_json::from_slice(&json).map_err(|_| Refusal::Invalid)?;
    if now >= grant.expires_at {
        return Err(Refusal::Expired(grant.expires_at));
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range")
    }

    fn grant() -> Grant {
        Grant {
            action: ActionKind::SnoozeHour,
            alert_id: "a1".into(),
            fingerprint: "f1".into(),
            alertname: "WatchpostCameraOffline".into(),
            source: Source::Camera("porch".into()),
            expires_at: at(100),
            nonce: "n1".into(),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block.
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_signed_grant_verifies_until_it_expires() {
        let token = sign(b"key", &grant());
        assert_eq!(verify(b"key", &token, at(99)), Ok(grant()));
        assert_eq!(
            verify(b"key", &token, at(100)),
            Err(Refusal::Expired(at(100)))
        );
    }

    #[test]
    fn another_key_a_changed_payload_or_junk_is_refused() {
        let token = sign(b"key", &grant());
        assert_eq!(verify(b"other", &token, at(0)), Err(Refusal::Invalid));
        // The same signature over another alert's grant.
        let (_, mac) = token.split_once('.').expect("two parts");
        let mut other = grant();
        other.fingerprint = "f2".into();
        let forged = format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("json"))
        );
        assert_eq!(verify(b"key", &forged, at(0)), Err(Refusal::Invalid));
        for junk in ["", ".", "abc", "a.b", &"x".repeat(MAX_TOKEN + 1)] {
            assert_eq!(verify(b"key", junk, at(0)), Err(Refusal::Invalid), "{junk}");
        }
    }
}
