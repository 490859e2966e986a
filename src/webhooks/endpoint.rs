//! Which webhook URLs may be called: `https`, or plain `http` to loopback
//! only (or with `OTP_WEBHOOK_ALLOW_HTTP`), and never an address inside the
//! service's network (private, loopback, link-local…) unless
//! `OTP_WEBHOOK_ALLOW_PRIVATE`; so plain `http` to loopback needs that too: a client must not make the service call its
//! neighbours (server-side request forgery). Checked when the URL is set and
//! again at every delivery, by the resolver the webhook client connects with,
//! so a name that later resolves elsewhere is refused too.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

use super::addresses::is_public;

const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, Default)]
pub struct UrlPolicy {
    pub allow_http: bool,
    pub allow_private: bool,
}

/// Why a URL may not be a webhook endpoint (said to whoever set it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("the webhook URL is not a valid absolute URL")]
    Invalid,
    #[error(
        "the webhook URL must be https: plain http goes only to loopback (127.0.0.1, ::1, localhost; which, being private, also needs OTP_WEBHOOK_ALLOW_PRIVATE=true), or anywhere with OTP_WEBHOOK_ALLOW_HTTP=true"
    )]
    NotHttps,
    #[error(
        "the webhook URL resolves to an address that is not on the public internet (private, loopback, link-local, or an IPv6 form of one), which the service does not call: OTP_WEBHOOK_ALLOW_PRIVATE=true on `serve` allows it (`serve --dev` allows it by default, for a receiver on the same machine)"
    )]
    Private,
    #[error("the webhook URL's host does not resolve")]
    Unresolved,
}

impl UrlPolicy {
    /// The URL's shape: absolute, http(s), a host, no credentials, not too long.
    /// Addresses are checked by `check_addresses`.
    pub fn check_shape(&self, raw: &str) -> Result<Url, UrlRefusal> {
        let url = Url::parse(raw).map_err(|_| UrlRefusal::Invalid)?;
        if raw.len() > MAX_URL_LEN
            || url.host().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(UrlRefusal::Invalid);
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.allow_http || is_loopback_host(&url) => Ok(url),
            "http" => Err(UrlRefusal::NotHttps),
            _ => Err(UrlRefusal::Invalid),
        }
    }

    /// Whether the service may connect to these addresses (all of them: a
    /// name with one private address among public ones is refused).
    pub fn check_addresses(&self, addresses: &[IpAddr]) -> Result<(), UrlRefusal> {
        if addresses.is_empty() {
            return Err(UrlRefusal::Unresolved);
        }
        if !self.allow_private && addresses.iter().any(|ip| !is_public(*ip)) {
            return Err(UrlRefusal::Private);
        }
        Ok(())
    }

    /// Both checks, resolving the host as the service would.
    pub async fn check(&self, raw: &str) -> Result<Url, UrlRefusal> {
        let url = self.check_shape(raw)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<IpAddr> = match (literal_address(&url), url.host()) {
            (Some(ip), _) => vec![ip],
            (None, Some(Host::Domain(name))) => tokio::net::lookup_host((name, port))
                .await
                .map(|found| found.map(|a: SocketAddr| a.ip()).collect())
                .unwrap_or_default(),
            (None, _) => Vec::new(),
        };
        self.check_addresses(&addresses)?;
        Ok(url)
    }

    /// At send time: the shape, and a host that is an address (not a name,
    /// which the webhook client's resolver checks at every connection).
    pub fn check_literal(&self, raw: &str) -> Result<(), UrlRefusal> {
        match literal_address(&self.check_shape(raw)?) {
            Some(ip) => self.check_addresses(&[ip]),
            None => Ok(()),
        }
    }
}

/// The URL's host when it is an address rather than a name.
fn literal_address(url: &Url) -> Option<IpAddr> {
    match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match (literal_address(url), url.host()) {
        (Some(ip), _) => ip.is_loopback(),
        (None, Some(Host::Domain(name))) => name.eq_ignore_ascii_case("localhost"),
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_http: false,
        allow_private: false,
    };

    #[test]
    fn https_or_loopback_http() {
        assert!(STRICT.check_shape("https://example.com/hooks").is_ok());
        assert_eq!(
            STRICT.check_shape("http://example.com/hooks"),
            Err(UrlRefusal::NotHttps)
        );
        assert!(STRICT.check_shape("http://127.0.0.1:8080/hooks").is_ok());
        assert!(STRICT.check_shape("http://localhost/hooks").is_ok());
        let lenient = UrlPolicy {
            allow_http: true,
            ..STRICT
        };
        assert!(lenient.check_shape("http://example.com/hooks").is_ok());
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com",
            "/relative",
            "not a url",
        ] {
            assert_eq!(STRICT.check_shape(bad), Err(UrlRefusal::Invalid), "{bad}");
        }
    }

    #[test]
    fn one_private_address_among_public_ones_is_refused() {
        let mixed = ["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        assert_eq!(STRICT.check_addresses(&mixed), Err(UrlRefusal::Private));
        let open = UrlPolicy {
            allow_private: true,
            ..STRICT
        };
        assert!(open.check_addresses(&mixed).is_ok());
        assert_eq!(open.check_addresses(&[]), Err(UrlRefusal::Unresolved));
    }

    #[tokio::test]
    async fn loopback_urls_need_the_private_allowance() {
        assert_eq!(
            STRICT.check("http://127.0.0.1:9/x").await,
            Err(UrlRefusal::Private)
        );
        let open = UrlPolicy {
            allow_private: true,
            ..STRICT
        };
        assert!(open.check("http://127.0.0.1:9/x").await.is_ok());
    }

    #[tokio::test]
    async fn ipv6_forms_of_local_addresses_are_refused_when_set() {
        for url in [
            "https://[::7f00:1]/x",
            "https://[::ffff:7f00:1]/x",
            "https://[2002:a00:1::1]/x",
            "https://[2001::1]/x",
            "https://[fec0::1]/x",
            "https://[64:ff9b:1::a00:1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
        ] {
            assert_eq!(STRICT.check(url).await, Err(UrlRefusal::Private), "{url}");
            assert_eq!(STRICT.check_literal(url), Err(UrlRefusal::Private), "{url}");
        }
        assert!(STRICT.check("https://[2606:4700:4700::1111]/x").await.is_ok());
    }
}
