use phonenumber::country::Id as CountryId;
use uuid::Uuid;

use super::*;
use crate::domain::{FieldError, VerificationStatus};

fn id() -> Uuid {
    Uuid::nil()
}

fn limited(window: Window) -> Error {
    Error::RateLimited {
        detail: "a window".into(),
        retry_after: 42,
        window,
    }
}

/// Every service error, with the Twilio status, code and `Retry-After` it
/// gets: the refusals of what was asked.
#[test]
fn every_refusal_has_its_twilio_code() {
    let table: Vec<(Error, u16, u32, Option<u64>)> = vec![
        (Error::InvalidRequest("`To` is missing".into()), 400, 60200, None),
        (
            Error::InvalidField(FieldError {
                field: "CustomFriendlyName",
                detail: "must be 1 to 64 characters".into(),
            }),
            400,
            60200,
            None,
        ),
        (Error::InvalidPhone("bad".into()), 400, 60200, None),
        (Error::PhoneRejected { id: id() }, 400, 60200, None),
        (
            Error::InvalidCode {
                id: id(),
                attempts_remaining: 2,
            },
            400,
            60200,
            None,
        ),
        (Error::IdempotencyKeyReused, 400, 60200, None),
        (Error::ClientExists("shop".into()), 400, 60200, None),
        (Error::Unauthorized, 401, 20003, None),
        (Error::AdminUnauthorized, 401, 20003, None),
        (
            Error::CountryNotAllowed {
                country: Some(CountryId::AR),
                allowed: vec![CountryId::BO],
            },
            403,
            60410,
            None,
        ),
        (Error::SuspectedFraud { retry_after: 600 }, 403, 60410, None),
        (Error::CrossOrigin, 403, 20403, None),
        (Error::NotFound("no such verification"), 404, 20404, None),
        (
            Error::NotPending {
                id: id(),
                status: VerificationStatus::Approved,
            },
            404,
            20404,
            None,
        ),
        (Error::Expired { id: id() }, 404, 20404, None),
        (
            Error::MethodNotAllowed {
                allow: "GET, POST".into(),
            },
            405,
            20004,
            None,
        ),
    ];
    assert_codes(table);
}

/// The limits, and what says "not now".
#[test]
fn every_limit_and_outage_has_its_twilio_code() {
    let table: Vec<(Error, u16, u32, Option<u64>)> = vec![
        (Error::MaxAttemptsReached { id: id() }, 429, 60202, None),
        (limited(Window::VerificationSends), 429, 60203, Some(42)),
        (
            Error::ResendTooSoon {
                id: id(),
                retry_after: 12,
            },
            429,
            20429,
            Some(12),
        ),
        (limited(Window::ClientRequests), 429, 20429, Some(42)),
        (limited(Window::PhoneSends), 429, 20429, Some(42)),
        (limited(Window::PhoneSendsAllClients), 429, 20429, Some(42)),
        (limited(Window::EndUserIp), 429, 20429, Some(42)),
        (limited(Window::WrongCodes), 429, 20429, Some(42)),
        (Error::IdempotencyKeyInUse, 429, 20429, Some(1)),
        (
            Error::DeliveryUnavailable {
                detail: "no gateway key in service".into(),
                retry_after: 30,
            },
            503,
            20503,
            Some(30),
        ),
        (Error::Unavailable { retry_after: 5 }, 503, 20503, Some(5)),
        (Error::QrUnavailable("no".into()), 503, 20503, Some(10)),
        (
            Error::Internal(anyhow::anyhow!("a secret cause")),
            500,
            20500,
            None,
        ),
    ];
    assert_codes(table);
}

fn assert_codes(table: Vec<(Error, u16, u32, Option<u64>)>) {
    for (error, status, code, retry_after) in table {
        let name = format!("{error:?}");
        let twilio = twilio_error(&error);
        assert_eq!(
            (twilio.status.as_u16(), twilio.code, twilio.retry_after),
            (status, code, retry_after),
            "{name}"
        );
    }
}

#[test]
fn the_body_has_exactly_twilios_four_keys() {
    let body = serde_json::to_value(twilio_error(&Error::NotFound("no such verification")).body()).unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "more_info", "status"]);
    assert_eq!(body["code"], 20404);
    assert_eq!(body["status"], 404);
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/20404");
}

#[test]
fn messages_name_twilios_fields_and_hide_internals() {
    let internal = twilio_error(&Error::Internal(anyhow::anyhow!("a secret cause")));
    assert!(!internal.message.contains("secret"), "{}", internal.message);
    let country = twilio_error(&Error::CountryNotAllowed {
        country: Some(CountryId::AR),
        allowed: vec![CountryId::BO, CountryId::PE],
    });
    assert!(
        country.message.contains("`To` is a number of AR") && country.message.contains("BO, PE"),
        "{}",
        country.message
    );
    let locked = twilio_error(&Error::MaxAttemptsReached { id: id() });
    assert!(!locked.message.contains("/otp"), "{}", locked.message);
}
