//! Who sent an event, as far as enrichment needs: the token's subject, the other claims the
//! contract enriches from, and the contract version the client was generated from. Logged with
//! the event, so a restart enriches it the same way.

use contract_support::manifest::Manifest;

#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub subject: Option<String>,
    pub claims: Vec<(String, String)>,
    /// The contract version the client was generated from (`X-Contract-Version`).
    pub client_version: Option<String>,
}

/// The log records the client's contract version among the claims under this name, which no
/// JWT claim can have (claim names are identifiers).
pub const CLIENT_VERSION_KEY: &str = "contractc.client_contract_version";

impl Caller {
    /// The caller a verified token and the `X-Contract-Version` header describe: the subject,
    /// and of the other claims the string ones the contract enriches from.
    pub fn new<'a>(
        subject: &str,
        claims: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
        manifest: &Manifest,
        client_version_header: Option<&str>,
    ) -> Caller {
        let wanted = manifest.enrichment_claims();
        Caller {
            subject: Some(subject.to_string()),
            claims: claims
                .into_iter()
                .filter(|(name, _)| *name != "sub" && wanted.contains(name))
                .filter_map(|(name, value)| Some((name.to_string(), value.as_str()?.to_string())))
                .collect(),
            client_version: client_version_header.and_then(client_version),
        }
    }

    /// The claims as the log keeps them (the client's version included).
    pub fn logged_claims(&self) -> Vec<(String, String)> {
        let mut claims = self.claims.clone();
        if let Some(version) = &self.client_version {
            claims.push((CLIENT_VERSION_KEY.to_string(), version.clone()));
        }
        claims
    }
}

/// An `X-Contract-Version` worth keeping: a short printable value, else none.
pub fn client_version(header: &str) -> Option<String> {
    let value = header.trim();
    (!value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_graphic()))
        .then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_versions_are_short_and_printable() {
        assert_eq!(client_version(" 1.2.3 ").as_deref(), Some("1.2.3"));
        assert_eq!(client_version(""), None);
        assert_eq!(client_version("1 2"), None);
        assert_eq!(client_version(&"9".repeat(65)), None);
    }
}
