//! Domain types: parsed once at the edge, so invalid data cannot travel further.
//! Nothing in here does I/O.

mod code;
mod locale;
mod phone;
mod purpose;
mod status;

pub use code::{CodeLength, OtpCode};
pub use locale::Locale;
pub use phone::{PhoneError, PhoneNumber, mask as mask_phone, parse_country};
pub use purpose::Purpose;
pub use status::{DeliveryError, DeliveryStatus, VerificationStatus};
