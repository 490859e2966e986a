//! The code a message carries. A resend sends the code already sent, kept
//! sealed with the verification, so that whichever of its messages arrives
//! first works and none is ever dead; a new code (the argon2 work of a
//! request) only for a new verification, or when the kept code no longer
//! opens.

use super::service::OtpService;
use crate::domain::{Effective, OtpCode, VerificationId};
use crate::error::Result;
use crate::store::verifications::KeptCode;

/// A new code and its hash.
pub(super) struct Fresh {
    pub(super) code: OtpCode,
    pub(super) hash: String,
}

/// The code a message carries.
pub(super) enum Sent<'a> {
    /// The one kept with the pending verification, sent again.
    Kept(OtpCode),
    /// A new one.
    Fresh(&'a Fresh),
}

impl Sent<'_> {
    pub(super) fn code(&self) -> &OtpCode {
        match self {
            Sent::Kept(code) => code,
            Sent::Fresh(fresh) => &fresh.code,
        }
    }
}

/// The code a resend sends: the one already sent while it can be opened
/// (`kept`); else a new one, made for this request (`fresh`), or to be made
/// first (`None`).
pub(super) fn resent_code(kept: Option<OtpCode>, fresh: Option<&Fresh>) -> Option<Sent<'_>> {
    kept.map(Sent::Kept).or(fresh.map(Sent::Fresh))
}

impl OtpService {
    /// A new code and its hash.
    pub(super) async fn fresh_code(&self, rules: &Effective) -> Result<Fresh> {
        let code = OtpCode::generate(rules.code_length);
        let hash = self.hasher.hash(&code).await?;
        Ok(Fresh { code, hash })
    }

    /// The code kept sealed with verification `id`, if a pepper of the
    /// service still opens it for the hash stored beside it.
    pub(super) fn kept_code(&self, kept: &KeptCode, id: VerificationId) -> Option<OtpCode> {
        let code = self.delivery.open_code(&kept.sealed, id, &kept.code_hash);
        if code.is_none() {
            tracing::warn!(
                verification = %id,
                "the code kept for resends no longer opens (its pepper is no longer configured, or its hash was replaced without it): the resend sends a new code, and the one sent before stops working"
            );
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(digits: &str) -> OtpCode {
        OtpCode::parse_any_length(digits).unwrap()
    }

    #[test]
    fn a_resend_sends_the_kept_code_and_a_new_one_only_when_the_kept_one_does_not_open() {
        let fresh = Fresh {
            code: code("222222"),
            hash: "hash".into(),
        };
        let sent = |kept: Option<&str>, fresh: Option<&Fresh>| {
            resent_code(kept.map(code), fresh).map(|s| {
                let kept = matches!(s, Sent::Kept(_));
                (kept, s.code().expose().to_owned())
            })
        };
        assert_eq!(
            sent(Some("111111"), Some(&fresh)),
            Some((true, "111111".into())),
            "the same code, even when a new one was made"
        );
        assert_eq!(sent(Some("111111"), None), Some((true, "111111".into())));
        assert_eq!(
            sent(None, Some(&fresh)),
            Some((false, "222222".into())),
            "the kept code does not open"
        );
        assert_eq!(sent(None, None), None, "a new code must be made first");
    }
}
