//! The Kinesis stream (on demand, KMS-encrypted with the AWS-managed key) the REST API writes
//! to and the Glue job reads.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{EncryptionType, StreamMode, StreamModeDetails, StreamStatus};

use crate::tags::{self, Tags};
use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, invalid};

/// The AWS-managed key for Kinesis, as the reference stack uses (no key policy to manage, and
/// producers and consumers need no KMS permission of their own).
pub const KMS_KEY: &str = "alias/aws/kinesis";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub stream: bool,
    /// Server-side encryption with KMS is on.
    pub encrypted: bool,
    /// As Kinesis reports it (`ACTIVE`, `CREATING`, …), for `status`.
    pub status: String,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create, wait until active, tag, encrypt.
    CreateStream {
        name: String,
        tags: Vec<(String, String)>,
    },
    StartEncryption {
        name: String,
    },
    Tag {
        name: String,
        change: tags::Change,
    },
}

pub async fn read(client: &Client, stream: &str) -> Result<Current, DeployError> {
    let summary = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await;
    let summary = found("kinesis:DescribeStreamSummary", summary, |e| {
        e.is_resource_not_found_exception()
    })?;
    let encrypted = summary
        .as_ref()
        .and_then(|s| s.stream_description_summary())
        .and_then(|d| d.encryption_type())
        == Some(&EncryptionType::Kms);
    let status = summary
        .as_ref()
        .and_then(|s| s.stream_description_summary())
        .map(|d| d.stream_status().as_str().to_string())
        .unwrap_or_default();
    let tags = match summary {
        Some(_) => read_tags(client, stream).await?,
        None => Tags::new(),
    };
    Ok(Current {
        stream: summary.is_some(),
        encrypted,
        status,
        tags,
    })
}

async fn read_tags(client: &Client, stream: &str) -> Result<Tags, DeployError> {
    let listed = client
        .list_tags_for_stream()
        .stream_name(stream)
        .send()
        .await
        .map_err(aws("kinesis:ListTagsForStream"))?;
    // A stream has at most 50 tags, and one call lists them all.
    Ok(listed
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let name = desired.stream(config);
    if !current.stream {
        steps.push(Step {
            resource: format!("kinesis stream {name} (on demand, KMS {KMS_KEY})"),
            action: Action::Create,
            op: crate::Op::Kinesis(Op::CreateStream {
                name,
                tags: desired.tags(config),
            }),
        });
        return;
    }
    if !current.encrypted {
        steps.push(Step {
            resource: format!("kinesis stream {name} (on demand, KMS {KMS_KEY})"),
            action: Action::Update(vec!["server-side encryption".into()]),
            op: crate::Op::Kinesis(Op::StartEncryption { name: name.clone() }),
        });
    }
    if let Some(change) = tags::change(&desired.tags(config), &current.tags) {
        steps.push(Step {
            resource: format!("kinesis stream {name}"),
            action: Action::Update(vec![change.describe()]),
            op: crate::Op::Kinesis(Op::Tag { name, change }),
        });
    }
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateStream { name, tags } => {
            let mode = StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .map_err(invalid)?;
            client
                .create_stream()
                .stream_name(name)
                .stream_mode_details(mode)
                .send()
                .await
                .map_err(aws("kinesis:CreateStream"))?;
            // A stream takes tags and encryption only once it is active.
            wait_active(client, name).await?;
            let tags: HashMap<String, String> = tags.iter().cloned().collect();
            client
                .add_tags_to_stream()
                .stream_name(name)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws("kinesis:AddTagsToStream"))?;
            start_encryption(client, name).await?;
        }
        Op::StartEncryption { name } => start_encryption(client, name).await?,
        Op::Tag { name, change } => {
            if !change.set.is_empty() {
                client
                    .add_tags_to_stream()
                    .stream_name(name)
                    .set_tags(Some(change.set.iter().cloned().collect()))
                    .send()
                    .await
                    .map_err(aws("kinesis:AddTagsToStream"))?;
            }
            if !change.remove.is_empty() {
                client
                    .remove_tags_from_stream()
                    .stream_name(name)
                    .set_tag_keys(Some(change.remove.clone()))
                    .send()
                    .await
                    .map_err(aws("kinesis:RemoveTagsFromStream"))?;
            }
        }
    }
    Ok(())
}

async fn start_encryption(client: &Client, name: &str) -> Result<(), DeployError> {
    client
        .start_stream_encryption()
        .stream_name(name)
        .encryption_type(EncryptionType::Kms)
        .key_id(KMS_KEY)
        .send()
        .await
        .map_err(aws("kinesis:StartStreamEncryption"))?;
    Ok(())
}

/// Polls until the stream is active (on-demand streams take seconds to a minute).
async fn wait_active(client: &Client, name: &str) -> Result<(), DeployError> {
    for _ in 0..60 {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(aws("kinesis:DescribeStreamSummary"))?;
        let status = summary
            .stream_description_summary()
            .map(|d| d.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(DeployError::Invalid(format!(
        "kinesis stream {name} is not active after 2 minutes: run deploy --apply again"
    )))
}
