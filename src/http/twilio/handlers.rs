//! The operations of Twilio Verify v2 this service answers, each calling the
//! service `/otp` calls (`OtpService::request`, `verify`, `find`, `cancel`,
//! `approve`): the same keys, limits, fraud rules, test numbers and webhooks.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use secrecy::ExposeSecret;

use super::errors::{TwilioError, TwilioErrorBody};
use super::forms::{CreateVerification, CreateVerificationCheck, UpdateVerification, required};
use super::resources::{ServiceResource, VerificationCheckResource, VerificationResource, base_url};
use crate::clients::Client;
use crate::domain::{
    Channel, ChannelRefusal, Locale, PhoneNumber, Purpose, Sid, SidKind, TwilioSids, VerificationId,
    check_display_name,
};
use crate::error::Error;
use crate::http::AppState;
use crate::otp::{Checked, NewVerification, Sends, Verification, VerifyTarget};

type Answer = Result<HttpResponse, TwilioError>;

/// The caller's SIDs, if `given` is its Service SID: another client's
/// service is refused exactly as one that does not exist.
fn own_service<'c>(client: &'c Client, given: &str) -> Result<&'c TwilioSids, TwilioError> {
    let given = Sid::parse(SidKind::Service, given);
    client
        .twilio
        .as_ref()
        .filter(|sids| given.as_ref() == Some(&sids.service))
        .ok_or_else(|| TwilioError::not_found("no such service"))
}

/// The verification a `VE` SID names; any other text names none (404).
fn verification_id(sid: &str) -> Result<VerificationId, TwilioError> {
    Sid::parse(SidKind::Verification, sid)
        .and_then(|sid| sid.verification())
        .ok_or_else(|| TwilioError::not_found("no such verification"))
}

/// `To`, which Twilio has in E.164 (formatting characters are let through).
fn to_phone(raw: &str) -> Result<PhoneNumber, Error> {
    PhoneNumber::parse(raw, None).map_err(|_| {
        Error::InvalidRequest(
            "`To` must be a phone number in E.164 form: `+`, the country calling code and the \
             number (e.g. +59169657008)"
                .into(),
        )
    })
}

/// A field left blank is a field not given.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// Start a verification.
///
/// Sends a code over WhatsApp to `To`. A number with a pending verification
/// gets that verification again, with the same code in a new message (a
/// resend: same `sid`; whichever message arrives first works), once its
/// resend cooldown is over; before, `20429` with `Retry-After`.
#[utoipa::path(
    tag = "twilio",
    params(("ServiceSid" = String, Path, description = "The client's Service SID (`VA…`)")),
    request_body(content = CreateVerification, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 201, description = "Started, or resent", body = VerificationResource),
        (status = 400, description = "`60200`: `To`, `Channel` or another field is missing or wrong (named in `message`), or the gateway refused the number", body = TwilioErrorBody),
        (status = 401, description = "`20003`: wrong or missing credentials", body = TwilioErrorBody),
        (status = 403, description = "`60410`: the number's country is not allowed, or its prefix, country or network is blocked as suspected fraud", body = TwilioErrorBody),
        (status = 404, description = "`20404`: not the caller's service", body = TwilioErrorBody),
        (status = 429, description = "`60203`: the verification's sends are used up; `20429`: a resend too soon, or a rate limit (the client's, the number's, the network's)", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`20503`: the gateway or the database is unavailable", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("twilio_basic" = []))
)]
#[post("/v2/Services/{ServiceSid}/Verifications")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn create_verification(
    client: Client,
    state: web::Data<AppState>,
    req: HttpRequest,
    service: web::Path<String>,
    form: web::Form<CreateVerification>,
) -> Answer {
    let sids = own_service(&client, &service)?;
    let answer = start(&client, &state, form.into_inner()).await;
    if let Err(e) = &answer {
        state
            .metrics
            .request_refusals
            .with_label_values(&[client.name.as_str(), e.problem().code, e.refusal_reason()])
            .inc();
    }
    let resource = VerificationResource::new(&answer?, sids, &base_url(&req));
    Ok(HttpResponse::Created().json(resource))
}

async fn start(client: &Client, state: &AppState, form: CreateVerification) -> Result<Verification, Error> {
    let phone = to_phone(required(&form.to, "To")?)?;
    let rules = state.otp.rules(client);
    let channel = Channel::decide(required(&form.channel, "Channel")?, rules.sms_as_whatsapp)
        .map_err(|refusal| channel_refusal(&refusal, &client.name))?;
    let input = NewVerification {
        phone,
        purpose: Purpose::default(),
        locale: given(&form.locale)
            .and_then(Locale::of_language_tag)
            .unwrap_or(rules.default_locale),
        end_user_ip: given(&form.device_ip)
            .map(|ip| {
                ip.trim()
                    .parse()
                    .map_err(|_| Error::InvalidRequest("`DeviceIp` must be an IPv4 or IPv6 address".into()))
            })
            .transpose()?,
        channel: Some(channel),
        display_name: form
            .custom_friendly_name
            .map(|name| check_display_name("CustomFriendlyName", name))
            .transpose()
            .map_err(Error::InvalidField)?,
        sends: Sends::Listed,
    };
    state.otp.request(client, input).await
}

/// Why a channel is refused, and the way out.
fn channel_refusal(refusal: &ChannelRefusal, client: &str) -> Error {
    Error::InvalidRequest(match refusal {
        ChannelRefusal::SmsOff => format!(
            "`Channel` `sms` is refused: this service sends codes over WhatsApp only, and this \
             client's `sms_as_whatsapp` setting is off. Send `Channel=whatsapp`, or have an \
             operator turn the setting on (`otp-service clients set {client} --sms-as-whatsapp \
             true`, or PATCH /admin/clients/{client} with {{\"sms_as_whatsapp\": true}}) to send \
             `sms` requests over WhatsApp"
        ),
        ChannelRefusal::Unsupported(_) => "`Channel` must be `whatsapp` (or `sms`, sent over \
             WhatsApp, for a client with `sms_as_whatsapp`): this service has no other channel \
             (no call, email, sna or auto)"
            .to_owned(),
    })
}

/// Check a code.
///
/// For `To`'s pending verification, or the one `VerificationSid` names. The
/// right code: `approved`, `valid: true`. A wrong one counts as an attempt:
/// `200` with `valid: false`, `status` `pending` (`max_attempts_reached` for
/// the wrong code that used the last attempt); after that, even the right
/// code is `60202`. A verification no longer pending (approved, canceled,
/// expired) is `20404`.
#[utoipa::path(
    tag = "twilio",
    params(("ServiceSid" = String, Path, description = "The client's Service SID (`VA…`)")),
    request_body(content = CreateVerificationCheck, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Checked: `valid` says whether the code was right", body = VerificationCheckResource),
        (status = 400, description = "`60200`: `Code` missing, or neither `To` nor `VerificationSid`, or `To` not a number", body = TwilioErrorBody),
        (status = 401, description = "`20003`: wrong or missing credentials", body = TwilioErrorBody),
        (status = 404, description = "`20404`: no such verification, or no longer pending (approved, canceled, expired, failed)", body = TwilioErrorBody),
        (status = 429, description = "`60202`: its wrong codes are used up (start a new verification); `20429`: a rate limit (the number's wrong codes, the client's requests)", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait (`20429` only)"))),
        (status = 503, description = "`20503`: the database is unavailable, or no hashing thread was free (the attempt is not counted)", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("twilio_basic" = []))
)]
#[post("/v2/Services/{ServiceSid}/VerificationCheck")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn check_verification(
    client: Client,
    state: web::Data<AppState>,
    service: web::Path<String>,
    form: web::Form<CreateVerificationCheck>,
) -> Answer {
    let sids = own_service(&client, &service)?;
    let form = form.into_inner();
    // A blank code is no attempt: it costs the person nothing.
    let code = form
        .code
        .filter(|code| !code.expose_secret().trim().is_empty())
        .ok_or_else(|| Error::InvalidRequest("`Code` is required".into()))?;
    let by_number = given(&form.to).is_some();
    let target = match (given(&form.verification_sid), given(&form.to)) {
        (Some(sid), None) => VerifyTarget::Id(verification_id(sid)?),
        // Checked in the statement that reserves the attempt: no read before.
        (Some(sid), Some(to)) => VerifyTarget::IdOfPhone {
            id: verification_id(sid)?,
            phone: to_phone(to)?,
        },
        (None, Some(to)) => VerifyTarget::Pending {
            phone: to_phone(to)?,
            purpose: Purpose::default(),
        },
        (None, None) => {
            return Err(Error::InvalidRequest("give `To` or `VerificationSid`".into()).into());
        }
    };
    let outcome = state.otp.verify(&client, target, code).await;
    state
        .metrics
        .verify_outcomes
        .with_label_values(&[client.name.as_str(), Checked::counted(&outcome)])
        .inc();
    // A wrong code is an answer, not an error: the verification as its
    // attempt left it.
    let resource = match outcome {
        Ok(Checked::Approved(approved)) => VerificationCheckResource::approved(&approved, sids),
        Ok(Checked::Wrong(wrong)) => VerificationCheckResource::wrong(&wrong, sids),
        // In Twilio's words: its apps know no purpose, only `To`.
        Err(Error::NotFound(_)) if by_number => {
            return Err(TwilioError::not_found("no pending verification for this `To`"));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::Ok().json(resource))
}

/// Read a verification.
#[utoipa::path(
    tag = "twilio",
    params(
        ("ServiceSid" = String, Path, description = "The client's Service SID (`VA…`)"),
        ("Sid" = String, Path, description = "The verification's SID (`VE…`)"),
    ),
    responses(
        (status = 200, description = "The verification, in any status", body = VerificationResource),
        (status = 401, description = "`20003`: wrong or missing credentials", body = TwilioErrorBody),
        (status = 404, description = "`20404`: no such verification of this service", body = TwilioErrorBody),        (status = 429, description = "`20429`: the client's requests per minute", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`20503`: the database is unavailable", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("twilio_basic" = []))
)]
#[get("/v2/Services/{ServiceSid}/Verifications/{Sid}")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn fetch_verification(
    client: Client,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Answer {
    let (service, sid) = path.into_inner();
    let sids = own_service(&client, &service)?;
    let found = state
        .otp
        .find_showing(&client, verification_id(&sid)?, Sends::Listed)
        .await?;
    Ok(HttpResponse::Ok().json(VerificationResource::new(&found, sids, &base_url(&req))))
}

/// Cancel or approve a pending verification.
///
/// `Status=canceled`: its code stops working. `Status=approved`: approved
/// without a code (the app checked the person another way), told and counted
/// as an approval. A message not yet sent is not sent.
#[utoipa::path(
    tag = "twilio",
    params(
        ("ServiceSid" = String, Path, description = "The client's Service SID (`VA…`)"),
        ("Sid" = String, Path, description = "The verification's SID (`VE…`)"),
    ),
    request_body(content = UpdateVerification, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Canceled, or approved", body = VerificationResource),
        (status = 400, description = "`60200`: `Status` missing or not `canceled` or `approved`", body = TwilioErrorBody),
        (status = 401, description = "`20003`: wrong or missing credentials", body = TwilioErrorBody),
        (status = 404, description = "`20404`: no such verification, or no longer pending", body = TwilioErrorBody),        (status = 429, description = "`20429`: the client's requests per minute", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`20503`: the database is unavailable", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("twilio_basic" = []))
)]
#[post("/v2/Services/{ServiceSid}/Verifications/{Sid}")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn update_verification(
    client: Client,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<UpdateVerification>,
) -> Answer {
    let (service, sid) = path.into_inner();
    let sids = own_service(&client, &service)?;
    let id = verification_id(&sid)?;
    let updated = match required(&form.status, "Status")? {
        "canceled" => state.otp.cancel(&client, id, Sends::Listed).await?,
        "approved" => state.otp.approve(&client, id, Sends::Listed).await?,
        _ => {
            let refused = "`Status` must be `canceled` or `approved`";
            return Err(Error::InvalidRequest(refused.into()).into());
        }
    };
    Ok(HttpResponse::Ok().json(VerificationResource::new(&updated, sids, &base_url(&req))))
}

/// Read the client's service.
#[utoipa::path(
    tag = "twilio",
    params(("Sid" = String, Path, description = "The client's Service SID (`VA…`)")),
    responses(
        (status = 200, description = "The service", body = ServiceResource),
        (status = 401, description = "`20003`: wrong or missing credentials", body = TwilioErrorBody),
        (status = 404, description = "`20404`: not the caller's service", body = TwilioErrorBody),
        (status = 429, description = "`20429`: the client's requests per minute", body = TwilioErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("twilio_basic" = []))
)]
#[get("/v2/Services/{Sid}")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn fetch_service(
    client: Client,
    state: web::Data<AppState>,
    req: HttpRequest,
    service: web::Path<String>,
) -> Answer {
    let sids = own_service(&client, &service)?;
    let rules = state.otp.rules(&client);
    let resource = ServiceResource::new(
        sids,
        rules.display_name,
        rules.code_length.digits() as u32,
        &client.created_at,
        &base_url(&req),
    );
    Ok(HttpResponse::Ok().json(resource))
}
