//! JSON request bodies, read so that a refusal names the field at fault
//! (`phone`: expected a string) without ever repeating a value: a parser
//! message such as "invalid type: integer `123456`" would put a code into
//! the answer and the logs.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The largest body a request may carry.
pub const LIMIT: usize = 16 * 1024;

/// A JSON object body as `T`; anything else is `400 invalid_request` saying
/// which field is wrong and what was expected there.
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
            m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON)
        });
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(
                    invalid("the body must be JSON, sent with Content-Type: application/json").into(),
                );
            }
            let bytes = bytes
                .await
                .map_err(|_| invalid("the body could not be read, or is larger than 16 KiB"))?;
            if bytes.len() > LIMIT {
                return Err(invalid("the body is larger than 16 KiB").into());
            }
            Ok(JsonBody(from_slice(&bytes)?))
        })
    }
}

fn invalid(detail: &str) -> Error {
    Error::InvalidRequest(detail.to_owned())
}

/// `bytes` as `T`, which must come from a JSON object.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid("the body must be a JSON object"));
    }
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut reader).map_err(|e| describe(&e))?;
    reader.end().map_err(|_| invalid("the body is not valid JSON"))?;
    Ok(value)
}

/// `value` as `T`, for bodies already read as JSON.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    if !value.is_object() {
        return Err(invalid("the body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| describe(&e))
}

/// What is wrong, where: never the value itself.
fn describe<E: ParserError>(e: &serde_path_to_error::Error<E>) -> Error {
    let path = e.path().to_string();
    let message = e.inner().message();
    let Some(message) = message else {
        return invalid("the body is not valid JSON");
    };
    // These name the field (never its value) and what is expected.
    let named = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|kind| message.starts_with(kind));
    let at = |what: &str| match path.as_str() {
        "." | "" => what.to_owned(),
        field => format!("`{field}`: {what}"),
    };
    Error::InvalidRequest(if named {
        message
    } else {
        let expected = message.split(", expected ").nth(1);
        match expected {
            Some(expected) => at(&format!("wrong type or value, expected {expected}")),
            None => at("wrong type or value"),
        }
    })
}

/// The parser's message without its position, or `None` for a syntax error.
trait ParserError {
    fn message(&self) -> Option<String>;
}

impl ParserError for serde_json::Error {
    fn message(&self) -> Option<String> {
        if !self.is_data() {
            return None;
        }
        let message = self.to_string();
        Some(message.split(" at line").next().unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        phone: String,
        code: Option<String>,
    }

    fn refusal(body: &str) -> String {
        match from_slice::<Body>(body.as_bytes()) {
            Err(Error::InvalidRequest(detail)) => detail,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refusal_names_the_field_and_what_it_expects_never_the_value() {
        assert_eq!(
            refusal(r#"{"phone": 59169657008}"#),
            "`phone`: wrong type or value, expected a string"
        );
        let code = refusal(r#"{"phone": "+59169657008", "code": 424242}"#);
        assert_eq!(code, "`code`: wrong type or value, expected a string");
        let unknown = refusal(r#"{"phone": "+1", "colour": "red"}"#);
        assert!(unknown.starts_with("unknown field `colour`"), "{unknown}");
        assert_eq!(refusal("{}"), "missing field `phone`");
        assert_eq!(refusal(r#"["+59169657008"]"#), "the body must be a JSON object");
        assert_eq!(refusal(r#"{"phone": "#), "the body is not valid JSON");
        assert_eq!(refusal(r#"{"phone": "+1"} {}"#), "the body is not valid JSON");
    }

    #[test]
    fn values_read_as_json_are_described_alike() {
        let refused = from_value::<Body>(serde_json::json!({"phone": ["+1"]}));
        assert!(
            matches!(&refused, Err(Error::InvalidRequest(d)) if d == "`phone`: wrong type or value, expected a string"),
            "{refused:?}"
        );
    }
}
