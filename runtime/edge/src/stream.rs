//! Where the edge puts judged events: a Kinesis stream, with `PutRecords` in calls within the
//! API's limits, and only the records Kinesis failed sent again.

use std::future::Future;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Why a record was not stored, after every attempt: Kinesis's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStored {
    pub code: String,
    pub message: String,
}

/// Stores records, answering for each whether it was stored.
pub trait Store: Send + Sync {
    fn put(&self, records: Vec<Record>) -> impl Future<Output = Vec<Result<(), NotStored>>> + Send;
}

/// `PutRecords` takes at most this many records per call…
const RECORDS_PER_CALL: usize = 500;
/// …and at most this many bytes (data and partition keys).
const BYTES_PER_CALL: usize = 5 << 20;
/// Attempts at a record Kinesis failed (throttled, internal error) before it is answered as
/// not stored. A whole call that fails is retried by the SDK's own retry policy.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

pub struct Kinesis {
    client: Client,
    stream: String,
}

impl Kinesis {
    pub fn new(client: Client, stream: String) -> Kinesis {
        Kinesis { client, stream }
    }

    /// One call's records, put until each is stored or out of attempts.
    async fn put_call(&self, records: &[Record]) -> Vec<Result<(), NotStored>> {
        let mut outcomes: Vec<Result<(), NotStored>> = vec![Ok(()); records.len()];
        let mut pending: Vec<usize> = (0..records.len()).collect();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let failed = self.put_once(records, &pending).await;
            let mut still = Vec::new();
            for (index, outcome) in pending.iter().zip(failed) {
                if let Err(error) = &outcome {
                    tracing::debug!(attempt, code = error.code.as_str(), "record not put");
                    still.push(*index);
                }
                outcomes[*index] = outcome;
            }
            pending = still;
            if pending.is_empty() || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        outcomes
    }

    /// One `PutRecords` of the records at `indices`; the outcome of each, in order.
    async fn put_once(&self, records: &[Record], indices: &[usize]) -> Vec<Result<(), NotStored>> {
        let entries = indices.iter().map(|&i| {
            PutRecordsRequestEntry::builder()
                .partition_key(&records[i].partition_key)
                .data(Blob::new(records[i].data.clone()))
                .build()
        });
        let entries: Result<Vec<_>, _> = entries.collect();
        let sent = match entries {
            Ok(entries) => {
                self.client
                    .put_records()
                    .stream_name(&self.stream)
                    .set_records(Some(entries))
                    .send()
                    .await
            }
            Err(error) => return every(indices.len(), "InvalidRecord", &error.to_string()),
        };
        let output = match sent {
            Ok(output) => output,
            Err(error) => {
                let code = error.code().unwrap_or("PutRecordsFailed").to_string();
                let message = match error.message() {
                    Some(message) => message.to_string(),
                    None => aws_sdk_kinesis::error::DisplayErrorContext(&error).to_string(),
                };
                return every(indices.len(), &code, &message);
            }
        };
        let results = output.records();
        (0..indices.len())
            .map(|k| match results.get(k) {
                Some(result) if result.error_code().is_none() => Ok(()),
                Some(result) => Err(NotStored {
                    code: result.error_code().unwrap_or_default().to_string(),
                    message: result.error_message().unwrap_or_default().to_string(),
                }),
                None => Err(NotStored {
                    code: "NoResult".into(),
                    message: "Kinesis answered fewer results than records".into(),
                }),
            })
            .collect()
    }
}

fn every(count: usize, code: &str, message: &str) -> Vec<Result<(), NotStored>> {
    vec![
        Err(NotStored {
            code: code.to_string(),
            message: message.to_string(),
        });
        count
    ]
}

impl Store for Kinesis {
    async fn put(&self, records: Vec<Record>) -> Vec<Result<(), NotStored>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for call in calls(&records) {
            outcomes.extend(self.put_call(&records[call]).await);
        }
        outcomes
    }
}

/// The records split into consecutive calls within `PutRecords`' limits.
fn calls(records: &[Record]) -> Vec<std::ops::Range<usize>> {
    let mut calls = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = record.data.len() + record.partition_key.len();
        if i > start && (i - start == RECORDS_PER_CALL || bytes + size > BYTES_PER_CALL) {
            calls.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        calls.push(start..records.len());
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> Record {
        Record {
            partition_key: "k".into(),
            data: vec![b'x'; bytes],
        }
    }

    #[test]
    fn calls_keep_within_the_record_and_byte_limits() {
        assert!(calls(&[]).is_empty());
        let many: Vec<Record> = (0..1001).map(|_| record(10)).collect();
        assert_eq!(calls(&many), vec![0..500, 500..1000, 1000..1001]);
        let heavy: Vec<Record> = (0..5).map(|_| record(2 << 20)).collect();
        assert_eq!(calls(&heavy), vec![0..2, 2..4, 4..5]);
    }
}
