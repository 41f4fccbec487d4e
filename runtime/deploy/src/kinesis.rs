//! The Kinesis stream (on demand) the REST API writes to and the Glue job reads.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails};

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found, invalid};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub stream: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateStream { name: String },
}

pub async fn read(client: &Client, stream: &str) -> Result<Current, DeployError> {
    let summary = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await;
    let stream = found("kinesis:DescribeStreamSummary", summary, |e| {
        e.is_resource_not_found_exception()
    })?;
    Ok(Current {
        stream: stream.is_some(),
    })
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    if current.stream {
        return;
    }
    let name = desired.stream(config);
    steps.push(Step {
        resource: format!("kinesis stream {name}"),
        action: Action::Create,
        op: crate::Op::Kinesis(Op::CreateStream { name }),
    });
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    let Op::CreateStream { name } = op;
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
    Ok(())
}
