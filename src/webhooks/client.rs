//! The webhook client's way out. Never through a proxy the environment names
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, which reqwest would otherwise
//! follow): the proxy would resolve the endpoint's name and connect, and the
//! address checks would judge the proxy instead of the endpoint, while
//! `last_error` told a client which ports answer inside the proxy's network.
//! Operators who need one name it in `OTP_WEBHOOK_PROXY`, and that proxy then
//! decides which addresses the service reaches.

use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

use super::endpoint::UrlPolicy;
use super::resolver::PolicyResolver;
use super::worker::TIMEOUT;

/// What is wrong with `OTP_WEBHOOK_PROXY`, without its value (it may hold a password).
const BAD_PROXY: &str = "OTP_WEBHOOK_PROXY must be the http:// or https:// URL of a proxy, such as \
     http://proxy.internal:3128 (or http://user:password@proxy.internal:3128)";

/// Where webhooks may go, and how.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    pub policy: UrlPolicy,
    /// `OTP_WEBHOOK_PROXY`.
    pub proxy: Option<SecretString>,
}

pub fn build(egress: &Egress) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION"), " webhooks"));
    let mut proxy_host = None;
    if let Some(proxy) = &egress.proxy {
        let (proxy, host) = explicit_proxy(proxy.expose_secret())?;
        builder = builder.proxy(proxy);
        proxy_host = host;
    }
    Ok(builder
        .dns_resolver(PolicyResolver {
            policy: egress.policy,
            proxy_host,
        })
        .build()?)
}

/// The proxy, and its host name when it has one: the only name the client
/// then resolves, and one the operator chose, so it may be private.
fn explicit_proxy(raw: &str) -> anyhow::Result<(reqwest::Proxy, Option<String>)> {
    let url = Url::parse(raw).map_err(|_| anyhow::anyhow!(BAD_PROXY))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!(BAD_PROXY);
    }
    let host = match url.host() {
        Some(Host::Domain(name)) => Some(name.to_ascii_lowercase()),
        _ => None,
    };
    let proxy = reqwest::Proxy::all(raw).map_err(|_| anyhow::anyhow!(BAD_PROXY))?;
    Ok((proxy, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_an_http_url_and_its_value_is_never_said() {
        let (_, host) = explicit_proxy("http://user:pw@Proxy.Internal:3128").unwrap();
        assert_eq!(host.as_deref(), Some("proxy.internal"));
        let (_, host) = explicit_proxy("https://10.0.0.5:3128").unwrap();
        assert_eq!(host, None);
        for bad in [
            "proxy:3128",
            "socks5://user:secret@proxy:1080",
            "ftp://proxy",
            "not a url",
        ] {
            let refused = explicit_proxy(bad).unwrap_err().to_string();
            assert!(refused.contains("OTP_WEBHOOK_PROXY"), "{refused}");
            assert!(!refused.contains("secret"), "{refused}");
        }
    }
}
