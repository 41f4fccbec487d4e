//! Issuers `serve` trusts beside each contract's own (`--trust-issuer`): the game's identity
//! provider, whose tokens name the player the game signed in rather than a dev guest.

use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::KeySource;

/// An external issuer as configured: its `iss` and where its keys are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIssuer {
    /// The `iss` its tokens carry, compared exactly (as API Gateway's JWT authorizer does).
    pub issuer: String,
    /// Its JWKS: given, or `ISSUER/.well-known/jwks.json` (the OpenID Connect convention).
    pub jwks_url: String,
}

impl FromStr for ExternalIssuer {
    type Err = String;

    /// `ISSUER` or `ISSUER=JWKS_URL`. An issuer is a URL without query or fragment (OpenID
    /// Connect Discovery), so the first `=` can only be the separator.
    fn from_str(text: &str) -> Result<ExternalIssuer, String> {
        let (issuer, jwks) = match text.split_once('=') {
            Some((issuer, jwks)) => (issuer, Some(jwks)),
            None => (text, None),
        };
        let jwks_url = jwks.map_or_else(
            || format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            str::to_string,
        );
        check_url("issuer", issuer)?;
        check_fetchable(&jwks_url)?;
        Ok(ExternalIssuer {
            issuer: issuer.to_string(),
            jwks_url,
        })
    }
}

fn check_url(what: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(format!(
            "the {what} {url:?} is not an http(s) URL (expected ISSUER or ISSUER=JWKS_URL)"
        )),
    }
}

/// Keys fetched in the clear could be swapped on the way: plain http only to this machine.
fn check_fetchable(jwks_url: &str) -> Result<(), String> {
    check_url("JWKS URL", jwks_url)?;
    let Some(rest) = jwks_url.strip_prefix("http://") else {
        return Ok(());
    };
    let host = crate::local::url_host(&format!("http://{rest}")).unwrap_or_default();
    if crate::local::is_local_host(&host) {
        Ok(())
    } else {
        Err(format!(
            "the JWKS URL {jwks_url:?} is plain http to another machine: anyone on the way could \
             swap the keys; use https (plain http is for an identity provider on this machine)"
        ))
    }
}

/// An issuer a verifier accepts, with its keys (shared by every contract trusting it, so its
/// JWKS is fetched and cached once).
#[derive(Clone)]
pub struct TrustedIssuer {
    pub issuer: String,
    pub keys: Arc<KeySource>,
}

impl ExternalIssuer {
    /// Its keys, fetched from its JWKS on first use.
    pub fn trusted(&self) -> TrustedIssuer {
        TrustedIssuer {
            issuer: self.issuer.clone(),
            keys: Arc::new(KeySource::remote(self.jwks_url.clone())),
        }
    }
}

/// The `iss` a token claims, read before its signature is checked: it only picks whose keys
/// check the signature, and the verified token must then carry that same `iss`.
pub(super) fn claimed_issuer(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Iss>(&bytes).ok().map(|c| c.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_alone_gets_the_well_known_jwks() {
        let parsed: ExternalIssuer = "https://id.example.com".parse().expect("parses");
        assert_eq!(parsed.issuer, "https://id.example.com");
        assert_eq!(
            parsed.jwks_url,
            "https://id.example.com/.well-known/jwks.json"
        );
        // The issuer is compared exactly; only the default URL loses the trailing slash.
        let slashed: ExternalIssuer = "https://id.example.com/".parse().expect("parses");
        assert_eq!(slashed.issuer, "https://id.example.com/");
        assert_eq!(
            slashed.jwks_url,
            "https://id.example.com/.well-known/jwks.json"
        );
    }

    #[test]
    fn a_jwks_url_follows_the_first_equals_sign() {
        let parsed: ExternalIssuer = "https://securetoken.google.com/my-game=https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com?a=b"
            .parse()
            .expect("parses");
        assert_eq!(parsed.issuer, "https://securetoken.google.com/my-game");
        assert!(parsed.jwks_url.ends_with("gserviceaccount.com?a=b"));
    }

    #[test]
    fn plain_http_keys_only_from_this_machine() {
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/idp",
            "http://[::1]:9000",
            "https://id.example.com=http://127.0.0.1:9/keys",
        ] {
            assert!(ok.parse::<ExternalIssuer>().is_ok(), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "https://id.example.com=http://keys.example.com/jwks.json",
            "id.example.com",
            "",
            "https://",
            "ftp://id.example.com",
        ] {
            assert!(bad.parse::<ExternalIssuer>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_claimed_issuer_is_read_without_the_signature() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://id.example.com","sub":"p"}"#);
        assert_eq!(
            claimed_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://id.example.com")
        );
        assert_eq!(claimed_issuer("not a token"), None);
        assert_eq!(claimed_issuer("e30.e30.sig"), None);
    }
}
