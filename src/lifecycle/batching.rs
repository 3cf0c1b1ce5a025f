//! A push whose buildspec has `batch`, where its children can be handed off (the function
//! invoking itself, `serve`'s queue): the batch is planned (a mistake fails the push's build in
//! DOWNLOAD_SOURCE, naming the task), its state goes to the index, and the children that may
//! start are handed off, each a build of its own (`BuildTarget::batch` says whose child).
//! When a child ends, its end changes the batch's state in the index (a conditional write:
//! two children ending at once are applied one after the other), which hands off what may start
//! now; the change that ends the last child closes the batch, writes its record
//! (`batches/<project>/<batch-id>/batch.json`) and sends the batch's commit status.
//!
//! The push's own build is the batch's: it is not run (SKIPPED, billed nothing, its record
//! naming the batch), and its commit status stays pending until the batch ends. The batch's id
//! is that build's.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use super::{BuildError, BuildSummary, Builds, Dispatch, DispatchError, in_index};
use crate::batch::{self, BatchRecord, Step};
use crate::index::Entry;
use crate::names::ProjectName;
use crate::pipeline::{self, Begun, BuildIdentity, Ready, Work};
use crate::source::Source;
use crate::state::BuildState;
use crate::store::{ObjectMeta, stop};
use crate::trigger::{BatchChild, BuildTarget};

/// Hands a batch's child off to be built (any [`Dispatch`] is one).
pub trait ChildDispatch: Send + Sync {
    fn dispatch_child(
        &self,
        target: BuildTarget,
    ) -> Pin<Box<dyn Future<Output = Result<(), DispatchError>> + Send + '_>>;
}

impl<D: Dispatch> ChildDispatch for D {
    fn dispatch_child(
        &self,
        target: BuildTarget,
    ) -> Pin<Box<dyn Future<Output = Result<(), DispatchError>> + Send + '_>> {
        Box::pin(self.dispatch(target))
    }
}

impl<S: Source> Builds<S> {
    /// Whether `ready` runs as a batch here: it has `batch`, batches are on, children can be
    /// handed off, and it is not itself a child.
    pub(super) fn runs_as_batch(&self, target: &BuildTarget, ready: &Ready) -> bool {
        ready.spec.batch.is_some()
            && self.config.batch
            && target.batch.is_none()
            && self.children.get().is_some()
    }

    /// Starts the batch of the push `target`, whose build `identity` has begun.
    pub(super) async fn start_batch(
        &self,
        target: &BuildTarget,
        identity: BuildIdentity,
        begun: Begun,
        ready: Box<Ready>,
        deadline: Option<Instant>,
    ) -> Result<BuildSummary, BuildError> {
        let spec = ready.spec.batch.clone().unwrap_or_default();
        let children = match batch::plan(&spec) {
            Ok(children) => children,
            Err(err) => {
                let path = ready.buildspec_path.as_deref().unwrap_or("buildspec.yml");
                let work = Work::CannotStart {
                    context: pipeline::client_error(format!("{path}: {err}")),
                    notes: Vec::new(),
                };
                return self.run(identity, work, Some(begun), deadline).await;
            }
        };
        let batch_id = identity.build_id.to_string();
        let mut record = BatchRecord::new(
            &batch_id,
            identity.project.as_str(),
            spec.fast_fail,
            &children,
        );
        record.buildspec = target.buildspec.clone();
        record.overrides = target.env_overrides.clone();
        record.target = Some(BuildTarget {
            build_id: None,
            dedup_key: None,
            batch: None,
            ..target.clone()
        });
        // A retry of a batch runs again only what did not succeed in it.
        if let Some(earlier) = &target.retries {
            self.carry_over(&mut record, earlier.as_str()).await;
        }
        let opened = record.clone();
        in_index(&self.books.index, move |index| index.open_batch(&opened)).await?;
        let (project, id) = (record.project.clone(), batch_id.clone());
        let changed = in_index(&self.books.index, move |index| {
            index.change_batch(&project, &id, &mut |r| r.advance(None))
        })
        .await?;
        if let Some((step, record)) = changed {
            self.follow(record, step).await;
        }
        let work = Work::Refused {
            reason: format!(
                "runs as batch {batch_id}: {} build(s), each its own",
                children.len()
            ),
        };
        // Its record names the batch (it is no child: no identifier).
        let identity = BuildIdentity {
            batch: Some(BatchChild {
                batch_id: batch_id.clone(),
                identifier: String::new(),
                compute_type: None,
                privileged_mode: false,
                image: None,
            }),
            ..identity
        };
        let mut summary = self.run(identity, work, Some(begun), deadline).await?;
        summary.status = BuildState::InProgress;
        summary.batch = Some(batch_id);
        Ok(summary)
    }

    /// The children that succeeded in the batch `earlier` (closed, with its record) succeed in
    /// `record` as they did, with their builds: only the others run.
    async fn carry_over(&self, record: &mut BatchRecord, earlier: &str) {
        let key = BatchRecord::key(&record.project, earlier);
        let store = self.store.clone();
        let got = tokio::task::spawn_blocking(move || store.get(&key)).await;
        let Some(before) = got
            .ok()
            .and_then(Result::ok)
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<BatchRecord>(&bytes).ok())
        else {
            tracing::info!(
                batch = earlier,
                "no closed batch to retry: every child runs"
            );
            return;
        };
        record.retries = Some(earlier.to_string());
        for child in &mut record.children {
            let succeeded = before
                .children
                .iter()
                .find(|c| c.identifier == child.identifier && c.status == BuildState::Succeeded);
            if let Some(succeeded) = succeeded {
                child.status = BuildState::Succeeded;
                child.build_id = succeeded.build_id.clone();
                child.reason = Some(format!("succeeded in batch {earlier}: not run again"));
            }
        }
    }

    /// Does what a change of the batch's state asks: hands off the children that may start (one
    /// that cannot be handed off ends FAILED, saying why, which may start or close more), then
    /// closes the batch or asks its running children to stop.
    async fn follow(&self, mut record: BatchRecord, mut step: Step) {
        loop {
            let failed = self.hand_off_children(&record, &step.start).await;
            if failed.is_empty() {
                break;
            }
            let (project, id) = (record.project.clone(), record.batch_id.clone());
            let changed = in_index(&self.books.index, move |index| {
                index.change_batch(&project, &id, &mut |r| {
                    let mut all = Step::default();
                    for (identifier, why) in &failed {
                        if let Some(c) = r.children.iter_mut().find(|c| &c.identifier == identifier)
                        {
                            c.reason = Some(why.clone());
                        }
                        let next = r.end(identifier, BuildState::Failed, None);
                        all.start.extend(next.start);
                        all.closed = next.closed.or(all.closed);
                    }
                    all
                })
            })
            .await;
            match changed {
                Ok(Some((next, changed))) => (step, record) = (next, changed),
                _ => {
                    tracing::error!(
                        batch_id = record.batch_id,
                        "children that could not be handed off could not be recorded"
                    );
                    return;
                }
            }
        }
        if step.closed.is_some() {
            self.close_batch(&record).await;
        } else if let Some(why) = &record.stopping {
            self.stop_running(&record, why).await;
        }
    }

    /// Hands off the children `start` of `record`, each a build of the batch's push; those that
    /// could not be handed off, and why.
    async fn hand_off_children(
        &self,
        record: &BatchRecord,
        start: &[usize],
    ) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        let (Some(children), Some(target)) = (self.children.get(), &record.target) else {
            return failed;
        };
        for &i in start {
            let Some(child) = record.plan.get(i) else {
                continue;
            };
            let mut overrides = record.overrides.clone();
            overrides.extend(child.env());
            let child_target = BuildTarget {
                buildspec: child.buildspec.clone().or_else(|| record.buildspec.clone()),
                env_overrides: overrides,
                build_id: None,
                dedup_key: Some(format!("batch:{}:{}", record.batch_id, child.identifier)),
                batch: Some(BatchChild {
                    batch_id: record.batch_id.clone(),
                    identifier: child.identifier.clone(),
                    compute_type: child.compute_type.clone(),
                    privileged_mode: child.privileged_mode,
                    image: child.image.clone(),
                }),
                ..target.clone()
            };
            if let Err(err) = children.dispatch_child(child_target).await {
                tracing::error!(
                    batch_id = record.batch_id,
                    child = child.identifier,
                    error = %err,
                    "a batch's child could not be handed off"
                );
                failed.push((
                    child.identifier.clone(),
                    format!("could not be started: {err}"),
                ));
            }
        }
        failed
    }

    /// A child's build ended as `summary` says (here, or on CodeBuild): its end goes into the
    /// batch's state, what may start now is handed off, and the batch closes with its last
    /// child.
    pub(super) async fn child_ended(
        &self,
        project: &ProjectName,
        child: &BatchChild,
        summary: &BuildSummary,
    ) {
        if summary.status.is_open() {
            // Handed to CodeBuild: its end comes later.
            return;
        }
        self.child_state(project, child, summary.status, summary.build_id.clone())
            .await;
    }

    /// Closes the builds nobody finished (when the sweep is due), and ends in their batches
    /// the children among them.
    pub async fn sweep(&self) {
        let (books, store) = (self.books.clone(), self.store.clone());
        let swept = tokio::task::spawn_blocking(move || books.sweep_quietly(store.as_ref()))
            .await
            .unwrap_or_default();
        self.swept(swept).await;
    }

    /// Children the sweep closed (killed mid-way: TIMED_OUT) end in their batches too.
    pub(super) async fn swept(&self, swept: Vec<Entry>) {
        for entry in swept {
            let Some((batch_id, identifier)) = entry
                .batch
                .as_deref()
                .and_then(|b| b.split_once('/'))
                .filter(|(_, identifier)| !identifier.is_empty())
            else {
                continue;
            };
            let child = BatchChild {
                batch_id: batch_id.to_string(),
                identifier: identifier.to_string(),
                compute_type: None,
                privileged_mode: false,
                image: None,
            };
            let build_id = Some(entry.build_id.to_string());
            // As the sweep closed it: TIMED_OUT, or as its stored record said.
            self.child_state(&entry.project, &child, entry.state, build_id)
                .await;
        }
    }

    /// A child ended as `status`: the batch's state changes, what may start is handed off, and
    /// the change that ends the last child closes the batch.
    async fn child_state(
        &self,
        project: &ProjectName,
        child: &BatchChild,
        status: BuildState,
        build_id: Option<String>,
    ) {
        let (project, child) = (project.to_string(), child.clone());
        let batch_id = child.batch_id.clone();
        let changed = in_index(&self.books.index, move |index| {
            index.change_batch(&project, &child.batch_id, &mut |r| {
                if let (Some(build_id), Some(i)) = (
                    &build_id,
                    r.children
                        .iter()
                        .position(|c| c.identifier == child.identifier),
                ) {
                    r.started(i, build_id);
                }
                r.end(&child.identifier, status, None)
            })
        })
        .await;
        let (step, record) = match changed {
            Ok(Some(changed)) => changed,
            Ok(None) => {
                tracing::warn!(
                    batch_id,
                    "a child ended whose batch the index does not have"
                );
                return;
            }
            Err(err) => {
                tracing::error!(batch_id, error = %err, "a child's end could not be recorded");
                return;
            }
        };
        self.follow(record, step).await;
    }

    /// `fast-fail` stopped the batch: its running children are asked to stop (each looks for
    /// the ask every few seconds and ends STOPPED).
    async fn stop_running(&self, record: &BatchRecord, why: &str) {
        if !record
            .children
            .iter()
            .any(|c| c.status == BuildState::InProgress)
        {
            return;
        }
        let key = BatchRecord::stop_key(&record.project, &record.batch_id);
        let (store, why) = (self.store.clone(), why.to_string());
        let asked =
            tokio::task::spawn_blocking(move || stop::ask(store.as_ref(), &key, &why)).await;
        if !matches!(asked, Ok(Ok(()))) {
            tracing::error!(
                batch_id = record.batch_id,
                "the batch's running children could not be asked to stop"
            );
        }
    }

    /// The batch's record in the store, and its commit status.
    async fn close_batch(&self, record: &BatchRecord) {
        let key = BatchRecord::key(&record.project, &record.batch_id);
        let store = self.store.clone();
        let bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
        let stored = tokio::task::spawn_blocking(move || {
            store.put(&key, &bytes, &ObjectMeta::new("application/json"))
        })
        .await;
        if !matches!(stored, Ok(Ok(_))) {
            tracing::error!(
                batch_id = record.batch_id,
                "the batch's record was not stored"
            );
        }
        if let Some(target) = &record.target {
            super::report::send_batch(&self.apis, &self.config.git, &self.base_env, target, record)
                .await;
        }
    }

    /// Sets who hands off a batch's children (the function itself, `serve`'s queue): without
    /// one, a buildspec's `batch` runs as one build.
    pub fn set_children(&self, children: Arc<dyn ChildDispatch>) {
        let _ = self.children.set(children);
    }
}
