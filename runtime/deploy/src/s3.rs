//! The artifacts bucket (versioned, noncurrent versions expired, public access blocked,
//! encrypted by default, tagged) and the Glue script object in it.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, invalid};

/// What exists: the bucket, and the scripts' bytes when the objects exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub bucket: bool,
    pub script: Option<Vec<u8>>,
    /// The erasure job's script (#23).
    pub erasure_script: Option<Vec<u8>>,
    /// The maintenance job's script (#24).
    pub maintenance_script: Option<Vec<u8>>,
    /// The bucket's settings, when it exists.
    pub settings: BucketSettings,
}

/// Days a deleted or overwritten object stays as a noncurrent version: an erased player's table
/// files are gone this long after the erasure job deleted them (docs/privacy.md). Long enough
/// to undo a mistaken delete the day it happens.
pub const NONCURRENT_VERSION_DAYS: i32 = 1;

/// The id of deploy's lifecycle rule (deploy owns the bucket's lifecycle configuration).
pub const LIFECYCLE_RULE_ID: &str = "contractc-noncurrent-versions";

/// The bucket settings deploy keeps: a table's files are never lost to an overwrite or a
/// delete at once (versioning) and are gone after [`NONCURRENT_VERSION_DAYS`] (lifecycle),
/// never public, always encrypted at rest, and tagged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketSettings {
    pub versioned: bool,
    /// Days until noncurrent versions expire under deploy's lifecycle rule (None: no rule).
    pub noncurrent_version_days: Option<i32>,
    pub public_access_blocked: bool,
    pub encrypted: bool,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateBucket {
        bucket: String,
        /// Outside us-east-1 a bucket must name its region (its location constraint).
        region: String,
    },
    /// Versioning, public access block, default encryption and tags (each an idempotent put).
    ConfigureBucket {
        bucket: String,
        tags: Vec<(String, String)>,
    },
    PutObject {
        bucket: String,
        key: String,
        body: Vec<u8>,
    },
}

/// The bucket, and the scripts of the streaming, erasure and maintenance jobs at `keys`.
pub async fn read(client: &Client, bucket: &str, keys: [&str; 3]) -> Result<Current, DeployError> {
    let [key, erasure_key, maintenance_key] = keys;
    let head = client.head_bucket().bucket(bucket).send().await;
    if found("s3:HeadBucket", head, |e| e.is_not_found())?.is_none() {
        // No bucket, no object in it.
        return Ok(Current::default());
    }
    Ok(Current {
        bucket: true,
        script: read_object(client, bucket, key).await?,
        erasure_script: read_object(client, bucket, erasure_key).await?,
        maintenance_script: read_object(client, bucket, maintenance_key).await?,
        settings: read_settings(client, bucket).await?,
    })
}

async fn read_object(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, DeployError> {
    let object = client.get_object().bucket(bucket).key(key).send().await;
    Ok(
        match found("s3:GetObject", object, |e| e.is_no_such_key())? {
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
        },
    )
}

/// Whether a failed read means "not configured" (S3 answers those with an error code).
fn unset<E: ProvideErrorMetadata>(code: &'static str) -> impl Fn(&E) -> bool {
    move |e| e.code() == Some(code)
}

async fn read_settings(client: &Client, bucket: &str) -> Result<BucketSettings, DeployError> {
    let versioned = read_versioning(client, bucket).await?;
    let got = client.get_public_access_block().bucket(bucket).send().await;
    let block = found(
        "s3:GetPublicAccessBlock",
        got,
        unset("NoSuchPublicAccessBlockConfiguration"),
    )?;
    let public_access_blocked = block
        .and_then(|b| b.public_access_block_configuration)
        .is_some_and(|c| {
            [
                c.block_public_acls,
                c.ignore_public_acls,
                c.block_public_policy,
                c.restrict_public_buckets,
            ]
            .iter()
            .all(|v| *v == Some(true))
        });
    let got = client.get_bucket_encryption().bucket(bucket).send().await;
    let encryption = found(
        "s3:GetBucketEncryption",
        got,
        unset("ServerSideEncryptionConfigurationNotFoundError"),
    )?;
    let encrypted = encryption
        .and_then(|e| e.server_side_encryption_configuration)
        .is_some_and(|c| !c.rules.is_empty());
    let got = client.get_bucket_tagging().bucket(bucket).send().await;
    let mut tags: Vec<(String, String)> = found("s3:GetBucketTagging", got, unset("NoSuchTagSet"))?
        .map(|t| {
            t.tag_set
                .into_iter()
                .map(|tag| (tag.key, tag.value))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    Ok(BucketSettings {
        versioned,
        noncurrent_version_days: read_lifecycle(client, bucket).await?,
        public_access_blocked,
        encrypted,
        tags,
    })
}

/// The noncurrent-version expiry of deploy's lifecycle rule, if the bucket has it enabled.
async fn read_lifecycle(client: &Client, bucket: &str) -> Result<Option<i32>, DeployError> {
    let got = client
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await;
    let lifecycle = found(
        "s3:GetBucketLifecycleConfiguration",
        got,
        unset("NoSuchLifecycleConfiguration"),
    )?;
    Ok(lifecycle
        .iter()
        .flat_map(|l| l.rules())
        .find(|r| r.id() == Some(LIFECYCLE_RULE_ID) && r.status() == &ExpirationStatus::Enabled)
        .and_then(|r| r.noncurrent_version_expiration())
        .and_then(|e| e.noncurrent_days()))
}

/// Whether the bucket's versioning is enabled.
async fn read_versioning(client: &Client, bucket: &str) -> Result<bool, DeployError> {
    match client.get_bucket_versioning().bucket(bucket).send().await {
        Ok(versioning) => Ok(versioning.status() == Some(&BucketVersioningStatus::Enabled)),
        // moto 5.2.5 answers 200 with the root element `GetBucketVersioningResponse` (S3's is
        // `VersioningConfiguration`), which the SDK cannot decode: a 200 is an answer, so
        // read the status from the body the SDK kept.
        Err(error)
            if error
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 200) =>
        {
            let body = error
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            Ok(body.contains("<Status>Enabled</Status>"))
        }
        Err(error) => Err(aws("s3:GetBucketVersioning")(error)),
    }
}

/// What the bucket should have.
pub(crate) fn wanted_settings(config: &DeployConfig) -> BucketSettings {
    BucketSettings {
        versioned: true,
        noncurrent_version_days: Some(NONCURRENT_VERSION_DAYS),
        public_access_blocked: true,
        encrypted: true,
        tags: config.bucket_tags(),
    }
}

/// What differs in the bucket's settings (tags: only deploy's own are compared).
fn setting_differences(have: &BucketSettings, want: &BucketSettings) -> Vec<String> {
    let mut differs = Vec::new();
    if have.versioned != want.versioned {
        differs.push("versioning".to_string());
    }
    if have.noncurrent_version_days != want.noncurrent_version_days {
        differs.push("noncurrent version expiry".into());
    }
    if have.public_access_blocked != want.public_access_blocked {
        differs.push("public access block".into());
    }
    if have.encrypted != want.encrypted {
        differs.push("default encryption".into());
    }
    if !want.tags.iter().all(|t| have.tags.contains(t)) {
        differs.push("tags".into());
    }
    differs
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let bucket = config.bucket();
    if !current.bucket {
        steps.push(Step {
            resource: format!("s3 bucket {bucket}"),
            action: Action::Create,
            op: crate::Op::S3(Op::CreateBucket {
                bucket: bucket.clone(),
                region: config.region.clone(),
            }),
        });
    }
    let want = wanted_settings(config);
    let differs = if current.bucket {
        setting_differences(&current.settings, &want)
    } else {
        Vec::new()
    };
    if !current.bucket || !differs.is_empty() {
        steps.push(Step {
            resource: format!(
                "s3 bucket {bucket} settings (versioning, lifecycle, public access block, encryption, tags)"
            ),
            action: if current.bucket {
                Action::Update(differs)
            } else {
                Action::Create
            },
            op: crate::Op::S3(Op::ConfigureBucket {
                bucket: bucket.clone(),
                tags: want.tags,
            }),
        });
    }
    let scripts = [
        (
            desired.script_key(config),
            Some(&desired.script),
            &current.script,
        ),
        (
            desired.erasure_script_key(config),
            desired.erasure_script.as_ref(),
            &current.erasure_script,
        ),
        (
            desired.maintenance_script_key(config),
            Some(&desired.maintenance_script),
            &current.maintenance_script,
        ),
    ];
    for (key, want, have) in scripts {
        let Some(want) = want.filter(|want| have.as_ref() != Some(*want)) else {
            continue;
        };
        let action = match have {
            Some(_) => Action::Update(vec!["script bytes".into()]),
            None => Action::Create,
        };
        steps.push(Step {
            resource: format!("s3 object s3://{bucket}/{key}"),
            action,
            op: crate::Op::S3(Op::PutObject {
                bucket: bucket.clone(),
                key,
                body: want.clone(),
            }),
        });
    }
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateBucket { bucket, region } => {
            // us-east-1 is the one region that takes no constraint (AWS refuses one naming it).
            let configuration = (region != "us-east-1").then(|| {
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build()
            });
            client
                .create_bucket()
                .bucket(bucket)
                .set_create_bucket_configuration(configuration)
                .send()
                .await
                .map_err(aws("s3:CreateBucket"))?;
        }
        Op::ConfigureBucket { bucket, tags } => configure(client, bucket, tags).await?,
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

async fn configure(
    client: &Client,
    bucket: &str,
    tags: &[(String, String)],
) -> Result<(), DeployError> {
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(aws("s3:PutBucketVersioning"))?;
    put_lifecycle(client, bucket).await?;
    client
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(aws("s3:PutPublicAccessBlock"))?;
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(invalid)?;
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .build(),
        )
        .build()
        .map_err(invalid)?;
    client
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(aws("s3:PutBucketEncryption"))?;
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let tagging = Tagging::builder()
        .set_tag_set(Some(tag_set))
        .build()
        .map_err(invalid)?;
    client
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(aws("s3:PutBucketTagging"))?;
    Ok(())
}

/// Deploy's lifecycle rule, the bucket's only one: noncurrent versions expire after
/// [`NONCURRENT_VERSION_DAYS`], and delete markers left alone go too.
async fn put_lifecycle(client: &Client, bucket: &str) -> Result<(), DeployError> {
    let rule = LifecycleRule::builder()
        .id(LIFECYCLE_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(NONCURRENT_VERSION_DAYS)
                .build(),
        )
        .expiration(
            LifecycleExpiration::builder()
                .expired_object_delete_marker(true)
                .build(),
        )
        .build()
        .map_err(invalid)?;
    let lifecycle = BucketLifecycleConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(invalid)?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(aws("s3:PutBucketLifecycleConfiguration"))?;
    Ok(())
}
