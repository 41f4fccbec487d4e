//! The artifacts bucket and the Glue script object in it.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found};

/// What exists: the bucket, and the script's bytes when the object exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub bucket: bool,
    pub script: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateBucket {
        bucket: String,
    },
    PutObject {
        bucket: String,
        key: String,
        body: Vec<u8>,
    },
}

pub async fn read(client: &Client, bucket: &str, key: &str) -> Result<Current, DeployError> {
    let head = client.head_bucket().bucket(bucket).send().await;
    if found("s3:HeadBucket", head, |e| e.is_not_found())?.is_none() {
        // No bucket, no object in it.
        return Ok(Current::default());
    }
    let object = client.get_object().bucket(bucket).key(key).send().await;
    let script = match found("s3:GetObject", object, |e| e.is_no_such_key())? {
        Some(object) => Some(
            object
                .body
                .collect()
                .await
                .map_err(|e| DeployError::Aws {
                    call: "s3:GetObject",
                    message: e.to_string(),
                })?
                .into_bytes()
                .to_vec(),
        ),
        None => None,
    };
    Ok(Current {
        bucket: true,
        script,
    })
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let bucket = config.bucket();
    if !current.bucket {
        steps.push(Step {
            resource: format!("s3 bucket {bucket}"),
            action: Action::Create,
            op: crate::Op::S3(Op::CreateBucket {
                bucket: bucket.clone(),
            }),
        });
    }
    if current.script.as_deref() == Some(desired.script.as_slice()) {
        return;
    }
    let key = desired.script_key(config);
    let action = match current.script {
        Some(_) => Action::Update(vec!["script bytes".into()]),
        None => Action::Create,
    };
    steps.push(Step {
        resource: format!("s3 object s3://{bucket}/{key}"),
        action,
        op: crate::Op::S3(Op::PutObject {
            bucket,
            key,
            body: desired.script.clone(),
        }),
    });
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateBucket { bucket } => {
            client
                .create_bucket()
                .bucket(bucket)
                .send()
                .await
                .map_err(aws("s3:CreateBucket"))?;
        }
        Op::PutObject { bucket, key, body } => {
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .map_err(aws("s3:PutObject"))?;
        }
    }
    Ok(())
}
