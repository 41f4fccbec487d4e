//! The maintenance job's schedule (#24): a Glue trigger of type SCHEDULED starting the
//! contract's maintenance job (glue.rs) on a cron expression (`--maintenance-schedule`,
//! default hourly). A trigger that differs (schedule, job) is replaced: deleted and created.

use aws_sdk_glue::Client;
use aws_sdk_glue::types::{Action as JobAction, TriggerType};

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws, found};

/// The default schedule: every hour at a quarter past (Glue's cron syntax, UTC).
pub const DEFAULT_SCHEDULE: &str = "cron(15 * * * ? *)";

/// The trigger as it exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub trigger: Option<Trigger>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub schedule: String,
    /// The jobs it starts.
    pub jobs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        name: String,
        trigger: Trigger,
        tags: Vec<(String, String)>,
    },
    /// Delete the trigger, then create it as wanted.
    Replace {
        name: String,
        trigger: Trigger,
        tags: Vec<(String, String)>,
    },
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    let got = client
        .get_trigger()
        .name(desired.maintenance_trigger(config))
        .send()
        .await;
    let trigger = found("glue:GetTrigger", got, |e| {
        e.is_entity_not_found_exception()
    })?
    .and_then(|t| t.trigger)
    .map(|t| Trigger {
        schedule: t.schedule().unwrap_or_default().to_string(),
        jobs: t
            .actions()
            .iter()
            .filter_map(|a| a.job_name().map(str::to_string))
            .collect(),
    });
    Ok(Current { trigger })
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let name = desired.maintenance_trigger(config);
    let trigger = Trigger {
        schedule: config.maintenance_schedule.clone(),
        jobs: vec![desired.maintenance_job(config)],
    };
    let tags = desired.tags(config);
    let resource = resource(&name, &trigger.schedule);
    let (action, op) = match &current.trigger {
        None => (
            Action::Create,
            Op::Create {
                name,
                trigger,
                tags,
            },
        ),
        Some(have) if *have == trigger => return,
        Some(have) => {
            let mut differs = Vec::new();
            if have.schedule != trigger.schedule {
                differs.push(format!("schedule {}", have.schedule));
            }
            if have.jobs != trigger.jobs {
                differs.push("job".to_string());
            }
            (
                Action::Update(differs),
                Op::Replace {
                    name,
                    trigger,
                    tags,
                },
            )
        }
    };
    steps.push(Step {
        resource,
        action,
        op: crate::Op::Schedule(op),
    });
}

pub(crate) fn resource(name: &str, schedule: &str) -> String {
    format!("glue trigger {name} ({schedule})")
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::Create {
            name,
            trigger,
            tags,
        } => create(client, name, trigger, tags).await,
        Op::Replace {
            name,
            trigger,
            tags,
        } => {
            delete(client, name).await?;
            create(client, name, trigger, tags).await
        }
    }
}

async fn create(
    client: &Client,
    name: &str,
    trigger: &Trigger,
    tags: &[(String, String)],
) -> Result<(), DeployError> {
    let actions = trigger
        .jobs
        .iter()
        .map(|job| JobAction::builder().job_name(job).build())
        .collect();
    client
        .create_trigger()
        .name(name)
        .r#type(TriggerType::Scheduled)
        .schedule(&trigger.schedule)
        .set_actions(Some(actions))
        .start_on_creation(true)
        .description("contractc: table maintenance (docs/operations.md)")
        .set_tags(Some(tags.iter().cloned().collect()))
        .send()
        .await
        .map_err(aws("glue:CreateTrigger"))?;
    Ok(())
}

pub(crate) async fn delete(client: &Client, name: &str) -> Result<(), DeployError> {
    client
        .delete_trigger()
        .name(name)
        .send()
        .await
        .map_err(aws("glue:DeleteTrigger"))?;
    Ok(())
}
