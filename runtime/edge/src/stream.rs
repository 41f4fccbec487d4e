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
/// not stored. A whole call that fails was retried by the SDK's own retry policy already (when
/// its error is one worth retrying): it is not sent again here.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// No new attempt starts after this long, so the answer comes well inside the function's
/// timeout (API Gateway would answer a timed-out function with its own 500).
const BUDGET: Duration = Duration::from_secs(4);

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
        let started = std::time::Instant::now();
        for attempt in 1..=ATTEMPTS {
            let failed = match self.put_once(records, &pending).await {
                Ok(failed) => failed,
                Err(error) => {
                    tracing::warn!(
                        code = error.code.as_str(),
                        message = error.message.as_str(),
                        "PutRecords failed"
                    );
                    for &index in &pending {
                        outcomes[index] = Err(error.clone());
                    }
                    return outcomes;
                }
            };
            let mut still = Vec::new();
            for (index, outcome) in pending.iter().zip(failed) {
                if outcome.is_err() {
                    still.push(*index);
                }
                outcomes[*index] = outcome;
            }
            pending = still;
            if pending.is_empty() || attempt == ATTEMPTS || started.elapsed() > BUDGET {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        if let Some(Err(error)) = pending.first().map(|&i| &outcomes[i]) {
            tracing::warn!(
                records = pending.len(),
                code = error.code.as_str(),
                "records not put"
            );
        }
        outcomes
    }

    /// One `PutRecords` of the records at `indices`: the outcome of each, in order, or the
    /// call's own failure.
    async fn put_once(
        &self,
        records: &[Record],
        indices: &[usize],
    ) -> Result<Vec<Result<(), NotStored>>, NotStored> {
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
            Err(error) => return Err(not_stored("InvalidRecord", &error.to_string())),
        };
        let output = match sent {
            Ok(output) => output,
            Err(error) => {
                let code = error.code().unwrap_or("PutRecordsFailed").to_string();
                let message = match error.message() {
                    Some(message) => message.to_string(),
                    None => aws_sdk_kinesis::error::DisplayErrorContext(&error).to_string(),
                };
                return Err(not_stored(&code, &message));
            }
        };
        let results = output.records();
        Ok((0..indices.len())
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
            .collect())
    }
}

fn not_stored(code: &str, message: &str) -> NotStored {
    NotStored {
        code: code.to_string(),
        message: message.to_string(),
    }
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
        // Records near Kinesis's 1 MiB each: five per 5 MiB call at most.
        let heavy: Vec<Record> = (0..12).map(|_| record(1000 << 10)).collect();
        assert_eq!(calls(&heavy), vec![0..5, 5..10, 10..12]);
    }
}
