//! Ready queries on AWS (#24): the contract's views (`Manifest::views`, the statements
//! `generated/<contract>/athena/views.sql` holds) as Athena named queries, in a workgroup of
//! the contract's own (`PREFIX-<contract>`) whose results go to the artifacts bucket. Running a
//! named query creates its view; the queries are saved, not run, by deploy (a view over a table
//! the streaming job has not written yet would fail to create).
//!
//! A query whose text or description differs is updated in place (its text names the
//! database), a query of the workgroup no view asks for any more is deleted, and `--destroy`
//! deletes the workgroup with its named queries.

use std::collections::BTreeMap;

use aws_sdk_athena::Client;
use aws_sdk_athena::types::{ResultConfiguration, Tag, WorkGroupConfiguration};

use crate::{Action, DeployConfig, DeployError, Desired, Step, aws};

/// A named query as deploy saves it and reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub name: String,
    pub description: String,
    pub database: String,
    pub sql: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub workgroup: bool,
    /// Name → (id, query), for the workgroup's named queries.
    pub queries: BTreeMap<String, (String, Query)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateWorkGroup {
        name: String,
        results: String,
        tags: Vec<(String, String)>,
    },
    CreateQuery {
        workgroup: String,
        query: Query,
    },
    UpdateQuery {
        id: String,
        query: Query,
    },
    DeleteQuery {
        id: String,
    },
}

impl Desired {
    pub(crate) fn workgroup(&self, c: &DeployConfig) -> String {
        format!("{}-{}", c.prefix, self.manifest.name)
    }

    /// Where the workgroup's query results go.
    pub(crate) fn query_results(&self, c: &DeployConfig) -> String {
        format!(
            "s3://{}/{}/{}/athena-results/",
            c.bucket(),
            c.prefix,
            self.manifest.name
        )
    }
}

/// The named queries the contract's views ask for.
pub fn desired_queries(desired: &Desired) -> Vec<Query> {
    let database = &desired.manifest.table.database;
    desired
        .manifest
        .views()
        .into_iter()
        .map(|view| Query {
            sql: view.create_statement(database),
            name: view.name,
            description: view.description,
            database: database.clone(),
        })
        .collect()
}

pub async fn read(
    client: &Client,
    config: &DeployConfig,
    desired: &Desired,
) -> Result<Current, DeployError> {
    let workgroup = desired.workgroup(config);
    let got = client.get_work_group().work_group(&workgroup).send().await;
    let exists = match got {
        Ok(answer) => answer.work_group().is_some(),
        // Athena answers a missing workgroup with InvalidRequestException.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_invalid_request_exception()) =>
        {
            false
        }
        Err(e) => return Err(aws("athena:GetWorkGroup")(e)),
    };
    if !exists {
        return Ok(Current::default());
    }
    let mut ids = Vec::new();
    let mut pages = client
        .list_named_queries()
        .work_group(&workgroup)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(aws("athena:ListNamedQueries"))?;
        ids.extend(page.named_query_ids().iter().cloned());
    }
    let mut queries = BTreeMap::new();
    for id in &ids {
        let got = client
            .get_named_query()
            .named_query_id(id)
            .send()
            .await
            .map_err(aws("athena:GetNamedQuery"))?;
        if let Some(q) = got.named_query() {
            let query = Query {
                name: q.name().to_string(),
                description: q.description().unwrap_or_default().to_string(),
                database: q.database().to_string(),
                sql: q.query_string().to_string(),
            };
            queries.insert(query.name.clone(), (id.clone(), query));
        }
    }
    Ok(Current {
        workgroup: true,
        queries,
    })
}

pub fn plan(config: &DeployConfig, desired: &Desired, current: &Current, steps: &mut Vec<Step>) {
    let wanted = desired_queries(desired);
    if wanted.is_empty() {
        return;
    }
    let workgroup = desired.workgroup(config);
    if !current.workgroup {
        steps.push(Step {
            resource: format!("athena workgroup {workgroup}"),
            action: Action::Create,
            op: crate::Op::Queries(Op::CreateWorkGroup {
                name: workgroup.clone(),
                results: desired.query_results(config),
                tags: desired.tags(config),
            }),
        });
    }
    for (name, (id, _)) in &current.queries {
        if !wanted.iter().any(|q| &q.name == name) {
            steps.push(Step {
                resource: resource(&workgroup, name),
                action: Action::Delete,
                op: crate::Op::Queries(Op::DeleteQuery { id: id.clone() }),
            });
        }
    }
    for query in wanted {
        let resource = resource(&workgroup, &query.name);
        let (action, op) = match current.queries.get(&query.name) {
            None => (
                Action::Create,
                Op::CreateQuery {
                    workgroup: workgroup.clone(),
                    query,
                },
            ),
            Some((_, have)) if *have == query => continue,
            Some((id, have)) => (
                Action::Update(differences(have, &query)),
                Op::UpdateQuery {
                    id: id.clone(),
                    query,
                },
            ),
        };
        steps.push(Step {
            resource,
            action,
            op: crate::Op::Queries(op),
        });
    }
}

fn differences(have: &Query, want: &Query) -> Vec<String> {
    // The database is not compared: UpdateNamedQuery cannot change it, and the text names it.
    [
        ("query", have.sql == want.sql),
        ("description", have.description == want.description),
    ]
    .into_iter()
    .filter(|(_, same)| !same)
    .map(|(what, _)| what.to_string())
    .collect()
}

pub(crate) fn resource(workgroup: &str, name: &str) -> String {
    format!("athena named query {workgroup}/{name}")
}

pub async fn apply(client: &Client, op: &Op) -> Result<(), DeployError> {
    match op {
        Op::CreateWorkGroup {
            name,
            results,
            tags,
        } => {
            let configuration = WorkGroupConfiguration::builder()
                .result_configuration(
                    ResultConfiguration::builder()
                        .output_location(results)
                        .build(),
                )
                .enforce_work_group_configuration(true)
                .build();
            let tags = tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            client
                .create_work_group()
                .name(name)
                .description("contractc: the contract's ready queries (docs/operations.md)")
                .configuration(configuration)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(aws("athena:CreateWorkGroup"))?;
        }
        Op::CreateQuery { workgroup, query } => {
            client
                .create_named_query()
                .work_group(workgroup)
                .name(&query.name)
                .description(&query.description)
                .database(&query.database)
                .query_string(&query.sql)
                .send()
                .await
                .map_err(aws("athena:CreateNamedQuery"))?;
        }
        Op::UpdateQuery { id, query } => {
            client
                .update_named_query()
                .named_query_id(id)
                .name(&query.name)
                .description(&query.description)
                .query_string(&query.sql)
                .send()
                .await
                .map_err(aws("athena:UpdateNamedQuery"))?;
        }
        Op::DeleteQuery { id } => {
            client
                .delete_named_query()
                .named_query_id(id)
                .send()
                .await
                .map_err(aws("athena:DeleteNamedQuery"))?;
        }
    }
    Ok(())
}

/// `--destroy`: the workgroup, its named queries with it.
pub(crate) async fn delete_workgroup(client: &Client, name: &str) -> Result<(), DeployError> {
    client
        .delete_work_group()
        .work_group(name)
        .recursive_delete_option(true)
        .send()
        .await
        .map_err(aws("athena:DeleteWorkGroup"))?;
    Ok(())
}
