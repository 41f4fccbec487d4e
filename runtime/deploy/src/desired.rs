//! The desired state: what one contract needs deployed, read from the manifest compiled into
//! this binary and the artefacts `contractc build` wrote. What its resources are called is in
//! `names.rs`; what each resource kind makes of it is in that kind's module.

use contract_support::manifest::{Issuer, Manifest};
use serde_json::Value;

use crate::{DeployConfig, DeployError, invalid};

/// Everything one contract needs deployed: its manifest, and the generated artefacts.
pub struct Desired {
    pub manifest: &'static Manifest,
    pub script: Vec<u8>,
    /// The erasure job's script (`None`: the contract names no data subject).
    pub erasure_script: Option<Vec<u8>>,
    /// The maintenance job's script (#24).
    pub maintenance_script: Vec<u8>,
    pub model: String,
    /// The batch route's model (`None`: the contract has no batch route).
    pub batch_model: Option<String>,
    pub openapi: Value,
}

/// A generated script names the fingerprint of the contract it was built from: it must be the
/// one this binary was built from.
fn check_fingerprint(
    manifest: &Manifest,
    generated: &std::path::Path,
    rel: &str,
    script: &[u8],
) -> Result<(), DeployError> {
    let line = format!("FINGERPRINT = \"{}\"", manifest.source.fingerprint);
    if String::from_utf8_lossy(script).contains(&line) {
        return Ok(());
    }
    Err(DeployError::Invalid(format!(
        "{}: {} was generated from another version of the contract than this binary was built \
         from: run `cargo run -p contractc -- build` and rebuild contract-deploy",
        manifest.name,
        generated.join(&manifest.name).join(rel).display()
    )))
}

impl Desired {
    /// Reads the generated artefacts of `manifest` from `generated` and checks they come from
    /// the same contract as the manifest compiled into this binary (the script names the
    /// fingerprint it was built from).
    pub fn load(
        manifest: &'static Manifest,
        generated: &std::path::Path,
    ) -> Result<Desired, DeployError> {
        let read = |rel: &str| {
            let path = generated.join(&manifest.name).join(rel);
            std::fs::read(&path).map_err(|source| DeployError::Io { path, source })
        };
        let script = read("glue/streaming_job.py")?;
        check_fingerprint(manifest, generated, "glue/streaming_job.py", &script)?;
        let erasure_script = match manifest.subject {
            Some(_) => {
                let erasure = read("glue/erasure_job.py")?;
                check_fingerprint(manifest, generated, "glue/erasure_job.py", &erasure)?;
                Some(erasure)
            }
            None => None,
        };
        let maintenance_script = read("glue/maintenance_job.py")?;
        check_fingerprint(
            manifest,
            generated,
            "glue/maintenance_job.py",
            &maintenance_script,
        )?;
        let model = String::from_utf8_lossy(&read("apigateway/request-model.json")?).into_owned();
        let openapi: Value =
            serde_json::from_slice(&read("apigateway/openapi.json")?).map_err(invalid)?;
        let batch_model = match &manifest.ingest.batch_route {
            None => None,
            Some(route) => {
                if !openapi["paths"][route.as_str()].is_object() {
                    return Err(DeployError::Invalid(format!(
                        "{}: {} has no batch route {route}: run `cargo run -p contractc -- build`",
                        manifest.name,
                        generated
                            .join(&manifest.name)
                            .join("apigateway/openapi.json")
                            .display()
                    )));
                }
                let text = read("apigateway/batch-request-model.json")?;
                Some(String::from_utf8_lossy(&text).into_owned())
            }
        };
        Ok(Desired {
            manifest,
            script,
            erasure_script,
            maintenance_script,
            model,
            batch_model,
            openapi,
        })
    }

    /// The issuer the front door's JWT authorizer trusts; `None` for the dev identity provider
    /// without `--issuer-url` (it does not run on AWS): then the contract gets no edge.
    pub fn edge_issuer(&self, config: &DeployConfig) -> Option<String> {
        match &self.manifest.ingest.auth.issuer {
            Issuer::Url(url) => Some(url.clone()),
            Issuer::Dev => config.dev_issuer.clone(),
        }
    }
}
