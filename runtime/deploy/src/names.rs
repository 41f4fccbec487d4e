//! What a contract's resources are called: names, ARNs, URLs and tags, defined once beside the
//! desired state. The module creating a resource and every module referring to it (a policy
//! scoped to a stream, a stage logging to a group, a job running as a role) take the name from
//! here, so they agree, and no resource module needs another one for a name.

use crate::{DeployConfig, Desired};

/// A role the contract's stack runs as, by what runs as it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Glue,
    /// The REST door's Kinesis integration.
    ApiGateway,
    /// The edge function (the Lambda door).
    Edge,
}

/// A log group of the contract's stack, by what writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogGroup {
    /// The REST API's access log.
    RestApi,
    /// The HTTP API's (the JWT front door's) access log.
    HttpApi,
    /// The edge function's own log.
    Function,
}

impl DeployConfig {
    /// The artifacts bucket.
    pub fn bucket_name(&self) -> String {
        self.bucket()
    }

    pub(crate) fn bucket(&self) -> String {
        self.bucket
            .clone()
            .unwrap_or_else(|| format!("{}-artifacts", self.prefix))
    }

    /// The bucket serves every contract of the prefix: it carries the prefix's tag only.
    pub(crate) fn bucket_tags(&self) -> Vec<(String, String)> {
        vec![self.prefix_tag()]
    }

    fn prefix_tag(&self) -> (String, String) {
        ("contractc:prefix".to_string(), self.prefix.clone())
    }

    /// The Secrets Manager secret holding the key document of `pii: hash` fields (one per
    /// prefix: a player's hash is the same in every contract's tables).
    pub fn pii_secret(&self) -> String {
        format!("{}/pii-keys", self.prefix)
    }

    /// The secret's ARN as policies name it (Secrets Manager appends six random characters).
    pub(crate) fn pii_secret_arn_pattern(&self) -> String {
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:{}-*",
            self.region,
            self.account_id,
            self.pii_secret()
        )
    }

    /// The role API Gateway writes REST API logs with (one per prefix: the setting is per
    /// account and region).
    pub(crate) fn logs_role_name(&self) -> String {
        format!("{}-apigateway-logs", self.prefix)
    }

    /// The ARN of the account's role `name`.
    pub(crate) fn role_arn_of(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account_id)
    }
}

impl Desired {
    /// The tags every resource of the contract's stack carries.
    pub(crate) fn tags(&self, c: &DeployConfig) -> Vec<(String, String)> {
        vec![
            ("contractc:contract".to_string(), self.manifest.name.clone()),
            c.prefix_tag(),
        ]
    }

    pub(crate) fn stream(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.manifest.name)
    }

    pub(crate) fn stream_arn(&self, c: &DeployConfig) -> String {
        format!(
            "arn:aws:kinesis:{}:{}:stream/{}",
            c.region,
            c.account_id,
            self.stream(c)
        )
    }

    /// The Glue script's key in the artifacts bucket.
    pub(crate) fn script_key(&self, c: &DeployConfig) -> String {
        format!("{}/{}/streaming_job.py", c.prefix, self.manifest.name)
    }

    pub(crate) fn job(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.manifest.name)
    }

    /// The job's ARN, as Glue's tagging calls take it.
    pub(crate) fn job_arn(&self, c: &DeployConfig) -> String {
        format!(
            "arn:aws:glue:{}:{}:job/{}",
            c.region,
            c.account_id,
            self.job(c)
        )
    }

    /// The erasure job's script (#23) in the artifacts bucket.
    pub(crate) fn erasure_script_key(&self, c: &DeployConfig) -> String {
        format!("{}/{}/erasure_job.py", c.prefix, self.manifest.name)
    }

    /// Where `forget` leaves one erasure's subject ids for the job (which deletes them).
    pub(crate) fn erasure_subjects_key(&self, c: &DeployConfig, erasure: &str) -> String {
        format!(
            "{}/{}/erasures/{erasure}/subjects.txt",
            c.prefix, self.manifest.name
        )
    }

    /// Where the erasure job writes its receipt.
    pub(crate) fn erasure_receipt_key(&self, c: &DeployConfig, erasure: &str) -> String {
        format!(
            "{}/{}/erasures/{erasure}/receipt.json",
            c.prefix, self.manifest.name
        )
    }

    /// The erasure job (#23).
    pub(crate) fn erasure_job(&self, c: &DeployConfig) -> String {
        format!("{}-{}-erasure", c.prefix, self.manifest.name)
    }

    pub(crate) fn erasure_job_arn(&self, c: &DeployConfig) -> String {
        format!(
            "arn:aws:glue:{}:{}:job/{}",
            c.region,
            c.account_id,
            self.erasure_job(c)
        )
    }

    /// The maintenance job's script (#24) in the artifacts bucket.
    pub(crate) fn maintenance_script_key(&self, c: &DeployConfig) -> String {
        format!("{}/{}/maintenance_job.py", c.prefix, self.manifest.name)
    }

    /// The maintenance job (#24): compaction, manifests, snapshot expiry, orphan files.
    pub(crate) fn maintenance_job(&self, c: &DeployConfig) -> String {
        format!("{}-{}-maintenance", c.prefix, self.manifest.name)
    }

    pub(crate) fn maintenance_job_arn(&self, c: &DeployConfig) -> String {
        format!(
            "arn:aws:glue:{}:{}:job/{}",
            c.region,
            c.account_id,
            self.maintenance_job(c)
        )
    }

    /// The scheduled trigger starting the maintenance job.
    pub(crate) fn maintenance_trigger(&self, c: &DeployConfig) -> String {
        format!("{}-{}-maintenance", c.prefix, self.manifest.name)
    }

    /// The names of the contract's tables: events, quarantine, stream.
    pub(crate) fn table_names(&self) -> [String; 3] {
        [
            self.manifest.table.name.clone(),
            self.manifest.quarantine_table_name(),
            self.stream_table(),
        ]
    }

    /// The Glue table describing the Kinesis stream.
    pub(crate) fn stream_table(&self) -> String {
        format!("{}_stream", self.manifest.table.name)
    }

    /// The REST API.
    pub(crate) fn api(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.manifest.name)
    }

    /// The HTTP API in front of the REST API (the edge).
    pub(crate) fn edge_api(&self, c: &DeployConfig) -> String {
        format!("{}-edge", self.api(c))
    }

    /// A log group of the stack (Lambda logs to `/aws/lambda/<function>`).
    pub fn log_group(&self, c: &DeployConfig, group: LogGroup) -> String {
        match group {
            LogGroup::RestApi => format!("/aws/apigateway/{}", self.api(c)),
            LogGroup::HttpApi => format!("/aws/apigateway/{}-edge", self.api(c)),
            LogGroup::Function => format!("/aws/lambda/{}", self.function(c)),
        }
    }

    /// A log group's ARN as access log settings take it (no `:*`).
    pub fn log_group_arn(&self, c: &DeployConfig, group: LogGroup) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{}",
            c.region,
            c.account_id,
            self.log_group(c, group)
        )
    }

    /// The edge function (the Lambda door).
    pub(crate) fn function(&self, c: &DeployConfig) -> String {
        format!("{}-{}-edge", c.prefix, self.manifest.name)
    }

    pub(crate) fn function_arn(&self, c: &DeployConfig) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            c.region,
            c.account_id,
            self.function(c)
        )
    }

    /// The name of a managed role of the contract.
    pub fn role_name(&self, c: &DeployConfig, role: Role) -> String {
        let suffix = match role {
            Role::Glue => "glue",
            Role::ApiGateway => "apigateway",
            Role::Edge => "edge",
        };
        format!("{}-{}-{suffix}", c.prefix, self.manifest.name)
    }

    /// The ARN the stack uses for a role: the one given, else the managed one's.
    pub fn role_arn(&self, c: &DeployConfig, role: Role) -> String {
        let given = match role {
            Role::Glue => &c.glue_role_arn,
            Role::ApiGateway => &c.api_role_arn,
            Role::Edge => &None,
        };
        given
            .clone()
            .unwrap_or_else(|| c.role_arn_of(&self.role_name(c, role)))
    }
}

/// The API Gateway resource path of a route: its first segment is the stage (`/prod/x` → `/x`).
pub fn resource_path(route: &str) -> (String, String) {
    let mut parts = route.trim_start_matches('/').splitn(2, '/');
    let first = parts.next().unwrap_or_default().to_string();
    match parts.next() {
        Some(rest) => (first, format!("/{rest}")),
        None => ("prod".to_string(), route.to_string()),
    }
}

/// The REST API's invoke URL of a route: where the edge forwards to.
pub fn invoke_url(rest_api_id: &str, region: &str, route: &str) -> String {
    let (stage, path) = resource_path(route);
    format!("https://{rest_api_id}.execute-api.{region}.amazonaws.com/{stage}{path}")
}

/// A REST API's ARN, as API Gateway's tagging calls take it.
pub fn rest_api_arn(region: &str, api_id: &str) -> String {
    format!("arn:aws:apigateway:{region}::/restapis/{api_id}")
}

/// An HTTP API's ARN, as API Gateway's tagging calls take it.
pub fn http_api_arn(region: &str, api_id: &str) -> String {
    format!("arn:aws:apigateway:{region}::/apis/{api_id}")
}
