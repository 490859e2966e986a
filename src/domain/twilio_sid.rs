//! Twilio's identifiers, for the Twilio Verify compatible surface: two
//! capital letters naming the kind, then 32 hex digits. A client's Account
//! SID (`AC…`) and Service SID (`VA…`) are its own, stored with it; a
//! verification's SID (`VE…`) is its id's 32 digits, so that one
//! verification has one identity in both APIs (and each of its sends, `VL…`,
//! is its message's).

use std::fmt;

use uuid::Uuid;

use super::VerificationId;

/// The kinds of SID this service answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SidKind {
    Account,
    Service,
    Verification,
    /// One send of a verification's code (`send_code_attempts`): its message.
    Attempt,
}

impl SidKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Account => "AC",
            Self::Service => "VA",
            Self::Verification => "VE",
            Self::Attempt => "VL",
        }
    }
}

/// A SID of one kind, its digits in lowercase (as this service writes them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sid {
    kind: SidKind,
    digits: u128,
}

impl Sid {
    /// `text` as a SID of `kind`: the prefix exactly as Twilio writes it,
    /// then 32 hex digits in either case (Twilio's pattern allows both).
    pub fn parse(kind: SidKind, text: &str) -> Option<Self> {
        let digits = text.strip_prefix(kind.prefix())?;
        if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(Self {
            kind,
            digits: u128::from_str_radix(digits, 16).ok()?,
        })
    }

    pub fn kind(&self) -> SidKind {
        self.kind
    }

    /// A verification's SID: its id's digits.
    pub fn of_verification(id: VerificationId) -> Self {
        Self::of_uuid(SidKind::Verification, id.0)
    }

    /// A SID of `kind` whose digits are `id`'s.
    pub fn of_uuid(kind: SidKind, id: Uuid) -> Self {
        Self {
            kind,
            digits: id.as_u128(),
        }
    }

    /// The verification a `VE` SID names; `None` for a SID of another kind.
    pub fn verification(&self) -> Option<VerificationId> {
        (self.kind == SidKind::Verification).then(|| Uuid::from_u128(self.digits).into())
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:032x}", self.kind.prefix(), self.digits)
    }
}

/// A client's two SIDs, as Twilio's SDKs are given them: the Account SID is
/// the Basic user name, the Service SID is in every path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioSids {
    pub account: Sid,
    pub service: Sid,
}

impl TwilioSids {
    /// From their stored text; `None` if either is not a SID of its kind.
    pub fn parse(account: &str, service: &str) -> Option<Self> {
        Some(Self {
            account: Sid::parse(SidKind::Account, account)?,
            service: Sid::parse(SidKind::Service, service)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verification_sid_is_its_ids_digits_and_back() {
        let id = VerificationId::new();
        let sid = Sid::of_verification(id);
        let text = sid.to_string();
        assert_eq!(text, format!("VE{}", id.0.simple()));
        assert_eq!(text.len(), 34);
        let parsed = Sid::parse(SidKind::Verification, &text).unwrap();
        assert_eq!(parsed.verification(), Some(id));
    }

    #[test]
    fn the_digits_may_be_in_either_case_and_are_written_in_lowercase() {
        let text = "VE0193B6C27A1E7C3D9F2E3B1D5E8A9C01";
        let sid = Sid::parse(SidKind::Verification, text).unwrap();
        assert_eq!(sid.to_string(), "VE0193b6c27a1e7c3d9f2e3b1d5e8a9c01");
        assert_eq!(
            sid.verification().unwrap().to_string(),
            "0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01"
        );
    }

    #[test]
    fn other_prefixes_lengths_and_characters_are_refused() {
        let digits = "0193b6c27a1e7c3d9f2e3b1d5e8a9c01";
        for bad in [
            format!("ve{digits}"),
            format!("VA{digits}"),
            format!("VE{}", &digits[1..]),
            format!("VE{digits}0"),
            format!("VE{}g", &digits[1..]),
            format!("VE+{}", &digits[1..]),
            format!(" VE{digits}"),
            "VE".to_owned(),
            String::new(),
            "VE0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a".to_owned(),
        ] {
            assert_eq!(Sid::parse(SidKind::Verification, &bad), None, "{bad:?}");
        }
        assert!(Sid::parse(SidKind::Account, &format!("AC{digits}")).is_some());
        assert!(Sid::parse(SidKind::Service, &format!("VA{digits}")).is_some());
        let account = Sid::parse(SidKind::Account, &format!("AC{digits}")).unwrap();
        assert_eq!(account.verification(), None, "only a VE SID names a verification");
    }

    #[test]
    fn a_clients_sids_parse_each_as_its_kind() {
        let digits = "0123456789abcdef0123456789abcdef";
        let sids = TwilioSids::parse(&format!("AC{digits}"), &format!("VA{digits}")).unwrap();
        assert_eq!(sids.account.to_string(), format!("AC{digits}"));
        assert_eq!(sids.service.kind(), SidKind::Service);
        assert!(TwilioSids::parse(&format!("VA{digits}"), &format!("AC{digits}")).is_none());
    }
}
