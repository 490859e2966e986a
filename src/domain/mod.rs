//! Domain types: parsed once at the edge, so invalid data cannot travel further.
//! Nothing in here does I/O.

mod channel;
mod client_settings;
mod code;
mod ids;
mod locale;
mod network;
mod phone;
mod prefix;
mod purpose;
mod status;
mod text_enum;
mod transitions;
mod twilio_sid;
mod until;

pub use channel::{Channel, ChannelRefusal};
pub(crate) use client_settings::for_each_client_setting;
pub use client_settings::kinds as setting_kinds;
pub use client_settings::{
    Change, ClientSettings, Defaults, Effective, FieldError, SettingsChange, check_display_name,
};
pub use code::{CodeLength, OtpCode};
pub use ids::{ClientId, MessageId, SenderId, VerificationId, WebhookEventId};
pub use locale::Locale;
pub use network::{network, parse_network};
pub use phone::{
    CountryFrom, PhoneError, PhoneNumber, invalid_phone_detail, mask as mask_phone, parse_country,
};
pub use prefix::{Prefix, PrefixAction, PrefixRule, decide as decide_prefix};
pub use purpose::Purpose;
pub use status::{DeliveryError, DeliveryStatus, FailureReason, KeyState, MessageStatus, VerificationStatus};
pub use transitions::{
    APPROVAL_BUCKETS, EventType, Outcome, Transition, approval_bucket, events_for, outcome,
};
pub use twilio_sid::{Sid, SidKind, TwilioSids};
pub use until::parse_until;
