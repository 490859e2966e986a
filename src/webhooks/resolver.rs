//! The webhook client's name resolution: only addresses the URL policy
//! allows, at every connection, so a name that resolved to a public address
//! when it was set cannot later point the service at its own network.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::addresses::is_public;
use super::endpoint::UrlPolicy;

pub struct PolicyResolver {
    pub policy: UrlPolicy,
    /// `OTP_WEBHOOK_PROXY`'s host: the operator's choice, resolved as is.
    pub proxy_host: Option<String>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.policy.allow_private
            || self
                .proxy_host
                .as_deref()
                .is_some_and(|proxy| proxy.eq_ignore_ascii_case(name.as_str()));
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err("the webhook URL's host resolves to no address the service may call".into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A failed request in a few words, for the delivery's `last_error` (no
/// URL: the client knows its own, and logs need not carry it).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within 10 s".into()
    } else if e.is_connect() {
        "could not connect to the endpoint".into()
    } else if e.is_redirect() {
        "the endpoint redirected (redirects are not followed)".into()
    } else {
        "the request to the endpoint failed".into()
    }
}
