//! The key document of `pii: hash` fields (#23): one Secrets Manager secret per prefix
//! (`PREFIX/pii-keys`), made by deploy with a random key when a contract first needs it, read by
//! the streaming and erasure jobs (`--pii_secret`). Deploy never reads, prints or compares its
//! value: rotating the key is the operator's (docs/privacy.md), and a rotated secret is no drift.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::Tag;

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, invalid};

/// Whether the secret exists (and is not scheduled for deletion).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Creates the secret holding a new key document (the key made when applied).
    Create {
        name: String,
        tags: Vec<(String, String)>,
    },
}

impl Desired {
    /// Whether the contract stores anything hashed, so its jobs need the key.
    pub fn needs_pii_keys(&self) -> bool {
        let manifest = self.manifest;
        manifest.rewrites_personal_data()
            || manifest.subject_pii() == Some(contract_support::manifest::Pii::Hash)
    }
}

pub async fn read(client: &Client, name: &str) -> Result<Current, DeployError> {
    let got = client.describe_secret().secret_id(name).send().await;
    let secret = found("secretsmanager:DescribeSecret", got, |e| {
        e.is_resource_not_found_exception()
    })?;
    Ok(Current {
        exists: secret.is_some_and(|s| s.deleted_date().is_none()),
    })
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    if !desired.needs_pii_keys() || current.exists {
        return;
    }
    let name = config.pii_secret();
    steps.push(Step {
        resource: resource(&name),
        action: Action::Create,
        op: crate::Op::Secrets(Op::Create {
            name,
            tags: config.bucket_tags(),
        }),
    });
}

pub(crate) fn resource(name: &str) -> String {
    format!("secretsmanager secret {name}")
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::Create { name, tags } => {
            let tags = tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            client
                .create_secret()
                .name(name)
                .description("contractc: the key document of `pii: hash` fields (docs/privacy.md)")
                .secret_string(new_key_document()?)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws("secretsmanager:CreateSecret"))?;
            Ok(())
        }
    }
}

/// `{"current": "k1", "keys": {"k1": <32 random bytes, hex>}}`: serve's key document format.
fn new_key_document() -> Result<String, DeployError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(invalid)?;
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    Ok(serde_json::json!({ "current": "k1", "keys": { "k1": hex } }).to_string())
}
