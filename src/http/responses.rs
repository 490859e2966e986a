//! The error answers many routes share, each set declared once for the
//! OpenAPI document: a route lists the set (`responses(..., AdminErrors)`)
//! and its own rows beside it.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};

/// A `Problem` answer (`openapi::problems_as_problem_json` gives it its media type).
fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("Problem"))),
    )
}

/// A `Problem` answer that says when to try again.
fn retry_later(description: &str) -> ResponseBuilder {
    let seconds = HeaderBuilder::new()
        .schema(Some(<u64 as utoipa::PartialSchema>::schema()))
        .description(Some("Seconds to wait"))
        .build();
    problem(description).header("Retry-After", seconds)
}

fn unauthorized() -> (u16, ResponseBuilder) {
    (401, problem("`unauthorized`"))
}

fn cross_origin() -> (u16, ResponseBuilder) {
    (
        403,
        problem("`cross_origin`: a browser request from a page of another origin"),
    )
}

fn admin_off() -> (u16, ResponseBuilder) {
    (
        404,
        problem("`not_found`: admin endpoints are off (`OTP_ADMIN_KEY` unset)"),
    )
}

fn admin_rate_limited() -> (u16, ResponseBuilder) {
    (
        429,
        retry_later(
            "`rate_limited`: a wrong admin key, after ten wrong ones from this address in the last minute (the right key always passes)",
        ),
    )
}

fn client_rate_limited() -> (u16, ResponseBuilder) {
    (
        429,
        retry_later("`rate_limited`: the client's requests per minute"),
    )
}

fn database_down() -> (u16, ResponseBuilder) {
    (503, retry_later("`unavailable`: the database does not answer"))
}

macro_rules! responses {
    ($($(#[$doc:meta])* $name:ident = [$($row:ident),+];)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                [$($row()),+]
                    .into_iter()
                    .map(|(status, response)| (status.to_string(), RefOr::T(response.build())))
                    .collect()
            }
        }
    )*};
}

responses! {
    /// 401: any route that needs a key.
    Unauthorized = [unauthorized];
    /// 401 and 429: a route behind `X-Admin-Key`, before what it does itself.
    AdminAuth = [unauthorized, admin_rate_limited];
    /// 401, 404 (admin endpoints off), 429, 503: an admin route that reads.
    AdminErrors = [unauthorized, admin_off, admin_rate_limited, database_down];
    /// `AdminErrors` and 403 (another origin): an admin route that changes something.
    AdminChangeErrors = [unauthorized, cross_origin, admin_off, admin_rate_limited, database_down];
    /// 401, 429, 503: an admin route that reads, and says its own 404.
    AdminGuard = [unauthorized, admin_rate_limited, database_down];
    /// `AdminGuard` and 403: an admin route that changes something, and says its own 404.
    AdminChangeGuard = [unauthorized, cross_origin, admin_rate_limited, database_down];
    /// 403: a browser request from a page of another origin.
    CrossOrigin = [cross_origin];
    /// 404: admin endpoints are off.
    AdminOff = [admin_off];
    /// 401, 429 (the client's requests per minute), 503: a client's route.
    ClientErrors = [unauthorized, client_rate_limited, database_down];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses<T: IntoResponses>() -> Vec<String> {
        T::responses().into_keys().collect()
    }

    #[test]
    fn each_set_has_its_rows() {
        assert_eq!(statuses::<AdminErrors>(), ["401", "404", "429", "503"]);
        assert_eq!(
            statuses::<AdminChangeErrors>(),
            ["401", "403", "404", "429", "503"]
        );
        assert_eq!(statuses::<AdminChangeGuard>(), ["401", "403", "429", "503"]);
        assert_eq!(statuses::<ClientErrors>(), ["401", "429", "503"]);
    }

    #[test]
    fn what_may_be_retried_says_when() {
        for (status, response) in AdminChangeErrors::responses() {
            let RefOr::T(response) = response else {
                panic!("a reference")
            };
            let retry = response.headers.contains_key("Retry-After");
            assert_eq!(retry, status == "429" || status == "503", "{status}");
            assert!(response.content.contains_key("application/json"), "{status}");
        }
    }
}
