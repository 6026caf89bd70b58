//! Sending the stream: several processes per function, the copies of a
//! duplicate group released together by a barrier, logical write requests
//! for one device one after another, and a client's retry after a transient
//! answer. Every invocation becomes a [`Record`] for the checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use passcode_core::Action;
use tokio::sync::{Barrier, Mutex, OwnedMutexGuard, Semaphore};
use tokio::task::JoinSet;

use super::SoakConfig;
use super::answer::{Answer, classify};
use super::devices::SoakDevice;
use super::plan::Plan;
use crate::runtime::{FunctionProcess, Invocation};
use crate::stack::Stack;

/// One invocation and its answer.
pub(super) struct Record {
    /// Index of the logical request in the stream.
    pub plan: usize,
    /// The client's resend after a transient answer.
    pub retry: bool,
    pub latency: Duration,
    pub answer: Answer,
}

/// One execution environment; `busy` is held by whoever is about to invoke it,
/// so that the copies of a duplicate group start together instead of queueing.
struct Slot {
    process: FunctionProcess,
    busy: Arc<Mutex<()>>,
}

/// The processes of every function and, without the idempotency table, a
/// lock per device, shared by the request tasks. Dropping it stops the
/// processes.
pub(super) struct Runner {
    functions: HashMap<Action, Vec<Arc<Slot>>>,
    /// Empty with the table: its device lease must keep overlapping
    /// requests for one device to one POST.
    device_locks: HashMap<String, Arc<Mutex<()>>>,
    deadline: Duration,
    processes: usize,
}

impl Runner {
    /// Starts `config.processes` processes of every function and waits until
    /// each is ready.
    pub async fn start(
        stack: &Stack,
        config: &SoakConfig,
        pool: &[SoakDevice],
    ) -> anyhow::Result<Runner> {
        // Nothing advances an action during the run, so "pending" must hold for
        // its whole length: a stale pending action would allow a legitimate
        // second POST and blur invariant 2.
        let env = [("PENDING_WINDOW_MINUTES", "1440")];
        let mut functions: HashMap<Action, Vec<Arc<Slot>>> = HashMap::new();
        for action in Action::ALL {
            let mut slots = Vec::new();
            for _ in 0..config.processes {
                let process = stack.spawn(action, &env).await?;
                slots.push(Arc::new(Slot {
                    process,
                    busy: Arc::new(Mutex::new(())),
                }));
            }
            functions.insert(action, slots);
        }
        for slot in functions.values().flatten() {
            slot.process.ready().await?;
        }
        Ok(Runner {
            functions,
            device_locks: pool
                .iter()
                .filter(|_| !config.idempotency)
                .map(|d| (d.id.clone(), Arc::new(Mutex::new(()))))
                .collect(),
            deadline: config.deadline(),
            processes: config.processes,
        })
    }

    /// Sends every logical request and returns every invocation's record.
    pub async fn send_all(self: &Arc<Self>, plans: &[Arc<Plan>]) -> anyhow::Result<Vec<Record>> {
        // Enough groups in flight to keep every process busy, not so many that
        // thousands of tasks queue on the locks.
        let in_flight = Arc::new(Semaphore::new(self.processes * Action::ALL.len() * 2));
        let mut running = JoinSet::new();
        // A rival is sent by the request it goes with.
        for plan in plans.iter().filter(|p| p.sent_with.is_none()) {
            let permit = in_flight.clone().acquire_owned().await?;
            let rival = plan.rival.map(|n| plans[n].clone());
            let (plan, runner) = (plan.clone(), self.clone());
            running.spawn(async move {
                let records = runner.send(&plan, rival.as_deref()).await;
                drop(permit);
                records
            });
        }
        let mut records = Vec::new();
        while let Some(done) = running.join_next().await {
            records.extend(done.context("a request task panicked")?);
        }
        Ok(records)
    }

    /// One logical request: its copies (and its rival, if it has one) at
    /// the same instant, then maybe a retry.
    async fn send(&self, plan: &Plan, rival: Option<&Plan>) -> Vec<Record> {
        // Without the table, logical write requests for one device never
        // overlap (invariant 2); only the copies of one request do.
        let lock = plan
            .device_id
            .as_ref()
            .and_then(|id| self.device_locks.get(id));
        let _device = match (lock, plan.action.writes()) {
            (Some(lock), true) => Some(lock.clone().lock_owned().await),
            _ => None,
        };
        let slots = &self.functions[&plan.action];
        // Which plan each process gets; distinct processes by construction.
        let mut sends: Vec<(usize, &Plan)> = plan.copies.iter().map(|&i| (i, plan)).collect();
        sends.extend(
            rival
                .iter()
                .flat_map(|r| r.copies.iter().map(move |&i| (i, *r))),
        );
        sends.sort_by_key(|(i, _)| *i);
        let mut records = Vec::new();
        let transient = {
            let guards = if sends.len() == 1 {
                vec![any_free(slots, sends[0].0).await]
            } else {
                // Ascending order, so two groups can never wait on each other.
                let mut guards = Vec::new();
                for &(i, _) in &sends {
                    guards.push((i, slots[i].busy.clone().lock_owned().await));
                }
                guards
            };
            let barrier = Arc::new(Barrier::new(guards.len()));
            let mut copies = JoinSet::new();
            for (k, (i, _)) in guards.iter().enumerate() {
                let sent = sends[k].1;
                let (slot, barrier, event) = (slots[*i].clone(), barrier.clone(), sent.event());
                let (deadline, n) = (self.deadline, sent.n);
                copies.spawn(async move {
                    barrier.wait().await;
                    (n, slot.process.invoke(event, deadline).await)
                });
            }
            while let Some(done) = copies.join_next().await {
                let (n, invocation) =
                    done.unwrap_or_else(|e| panic!("invocation task failed: {e}"));
                let sent = rival.filter(|r| r.n == n).unwrap_or(plan);
                records.push(record(sent, false, &invocation));
            }
            // Only the request itself retries; its rival does not.
            records
                .iter()
                .any(|r| r.plan == plan.n && matches!(r.answer, Answer::Transient(_)))
        };
        if transient {
            // A POST the function stopped waiting for may still be inside the
            // simulator's 250 ms delay; let it land before the device's next
            // logical request reads it. A retrying client waits like this too.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if plan.retry && transient {
            // A client retrying with the same key or event id.
            let (i, _guard) = any_free(slots, plan.n % slots.len()).await;
            let invocation = slots[i].process.invoke(plan.event(), self.deadline).await;
            records.push(record(plan, true, &invocation));
        }
        records
    }
}

/// A free process, starting the search at `first`; waits for `first` when all are busy.
async fn any_free(slots: &[Arc<Slot>], first: usize) -> (usize, OwnedMutexGuard<()>) {
    for k in 0..slots.len() {
        let i = (first + k) % slots.len();
        if let Ok(guard) = slots[i].busy.clone().try_lock_owned() {
            return (i, guard);
        }
    }
    (first, slots[first].busy.clone().lock_owned().await)
}

fn record(plan: &Plan, retry: bool, invocation: &Invocation) -> Record {
    Record {
        plan: plan.n,
        retry,
        latency: invocation.duration,
        answer: classify(&invocation.outcome),
    }
}
