//! The OpenAPI 3.1 `webhooks` section: one entry per event a client's
//! endpoint receives, each a signed `POST` of a `WebhookEvent`.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::webhooks::events::{EventType, WebhookEvent};

const SIGNED: &str = "Signed as Standard Webhooks says (standardwebhooks.com): \
    `webhook-signature` holds `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` \
    keyed with the bytes of the client's secret after `whsec_` (base64); during the 24 h after a rotation it \
    holds two signatures, space-separated, and either verifies. Answer 2xx within 10 s; anything else (or \
    silence) is retried 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later, or after `Retry-After` when \
    longer. Delivered at least once: deduplicate by `webhook-id`. In order per verification.";

fn header(name: &str, description: &str, integer: bool) -> utoipa::openapi::path::Parameter {
    let schema = ObjectBuilder::new().schema_type(if integer { Type::Integer } else { Type::String });
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// Adds `webhooks` and the schemas they name to `api`.
pub fn add(api: &mut utoipa::openapi::OpenApi) {
    let mut webhooks = utoipa::openapi::path::Paths::new();
    for kind in EventType::ALL {
        let operation = OperationBuilder::new()
            .tag("webhooks")
            .operation_id(Some(kind.as_str().replace('.', "_")))
            .summary(Some(format!(
                "{} (sent to the client's webhook URL)",
                kind.as_str()
            )))
            .description(Some(SIGNED))
            .parameter(header(
                "webhook-id",
                "`msg_…`: the same at every retry of this event",
                false,
            ))
            .parameter(header(
                "webhook-timestamp",
                "Seconds since the Unix epoch, of this attempt",
                true,
            ))
            .parameter(header(
                "webhook-signature",
                "`v1,<base64>` (two, space-separated, while a rotated secret still signs)",
                false,
            ))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(WebhookEvent::name())))
                            .build(),
                    )
                    .build(),
            ))
            .response("2XX", ResponseBuilder::new().description("Received"))
            // The receiver authenticates the request by its signature, not a scheme.
            .securities(Some(Vec::<SecurityRequirement>::new()))
            .build();
        webhooks.paths.insert(
            kind.as_str().to_owned(),
            PathItem::new(HttpMethod::Post, operation),
        );
    }
    api.webhooks = Some(webhooks);
    let components = api.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(WebhookEvent::name().into_owned(), WebhookEvent::schema());
    let mut schemas = Vec::new();
    <WebhookEvent as ToSchema>::schemas(&mut schemas);
    components.schemas.extend(schemas);
}
