//! An approval that waits: when an unplanned live run's RPO gate refuses (the replica lags past
//! the RPO, or does not replicate), the run asks a human instead of failing, and waits. The same
//! loop asks the second question an unplanned run can have ([`Question::Capacity`]): after the
//! promotion, fewer compute instances can serve than the plan's minimum; approved, traffic moves
//! on what serves; rejected or unanswered, the run stops (the database stays promoted). And the
//! third ([`Question::DataTier`]): one database promoted and another's promotion failed (the data
//! tier split); approved, traffic moves on the databases promoted; rejected or unanswered, the run
//! stops there. A data tier found whole asks nothing: the run fails with the branch's error.
//!
//! The state machine's loop (`Decision` -> `DecisionMade` -> `WaitForDecision`) asks this step
//! again every `poll_seconds`; there are no task tokens, so the same definition runs on AWS and in
//! the local ASL engine. The first call writes a `pending` decision in the plan store
//! ([`PlanStore::ask_decision`], conditional: one writer) and tells the on-call with the exact
//! commands; `drctl run approve|reject` writes the answer (conditional: one answer). Approved,
//! preflight runs again and its gate, refusing again, finds the approval in the plan store
//! ([`recorded_approval`]: never in the run's input) and passes, recorded as approved by whom and
//! why. Rejected:
//! `DecisionRejected`. Nobody answers within the phase's share of the RTO: `StepTimedOut`.
//! Nothing in the estate is changed on any of these paths.

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::notify::{self, Notice, NoticeKind};
use crate::run::CaughtError;
use crate::run::budget::Budget;
use crate::run::{
    Approval, GateDecision, GateVerdict, Outcome, Principal, RunbookState, StepKey, StepRecord, StepTimer, ValidState,
};
use crate::store::{Decision, DecisionStatus, PlanStore, Question};

/// The fact of an approved split data tier (the report reads it).
pub const SPLIT_FACT: &str = "split_data_tier";

/// What the run asks about, and where the step's record goes.
fn question_of(state: &RunbookState, question: Question) -> Result<(&CaughtError, StepKey), DrError> {
    let (refused, key, path) = match question {
        Question::RpoGate => (&state.gate_error, StepKey::Decision, "$.gate_error"),
        Question::Capacity => (&state.capacity_error, StepKey::CapacityDecision, "$.capacity_error"),
        Question::DataTier => (&state.data_tier_error, StepKey::DataTierDecision, "$.data_tier_error"),
    };
    match refused {
        Some(refused) => Ok((refused, key)),
        None => Err(DrError::InvalidInput { message: format!("nothing to decide on ({path} is absent)") }),
    }
}
use crate::time;

/// Asks for the decision once, then reads it: `ready` with the approval, not ready while pending.
pub async fn decision(clients: &AwsClients, state: &ValidState, question: Question) -> Result<StepRecord, DrError> {
    decision_about(clients, state, question, None).await
}

/// [`decision`], the question followed by what the run found (`context`).
pub async fn decision_about(
    clients: &AwsClients,
    state: &ValidState,
    question: Question,
    context: Option<String>,
) -> Result<StepRecord, DrError> {
    let Some(store) = PlanStore::of_run(clients, &state.run) else {
        return Err(DrError::InvalidInput {
            message: "a run that holds no plan state has nowhere to wait for a decision".into(),
        });
    };
    let (refused, key) = question_of(state, question)?;
    let timer = StepTimer::start(key.as_str(), clients);
    let budget = Budget::of(state, key, timer.started());
    // The data tier's question says how it is split (read from RDS by `database`).
    let question_text = match context {
        Some(context) => format!("{}; {context}", refused.reason()),
        None => refused.reason(),
    };
    let asked = Decision {
        plan: state.plan.name.clone(),
        run_id: state.run.id.clone(),
        asks: question,
        status: DecisionStatus::Pending,
        question: question_text,
        asked_at: timer.started(),
        execution_arn: state.execution.as_ref().map(|e| e.arn.clone()),
        deadline: timer.started() + chrono::Duration::from_std(budget.allowed).unwrap_or_default(),
        decided_by: None,
        decided_by_id: None,
        decided_at: None,
        reason: None,
    };
    store.ask_decision(&asked).await?;
    // Only a decision its decider's own answer record proves counts (else it reads as pending).
    let mut decision = store.verified_decision(&state.plan.name, &state.run.id, question).await?.unwrap_or(asked);
    if decision.status == DecisionStatus::Approved {
        store.may_approve(&state.plan, &state.run, &decider(&decision)).await?;
        if !for_this_run(&decision, state) {
            // Preflight would not apply it either: wait on, within the budget, as if pending.
            decision.status = DecisionStatus::Pending;
        }
    }
    // Told on the step's first answer, not only by the call that wrote the question: a Lambda
    // that wrote it and timed out before telling is invoked again (Retry) with no decision record
    // in the state yet, and tells then. Later polls carry the record and tell nothing.
    if decision.status == DecisionStatus::Pending && state.step(key).is_none() {
        notify::send(clients, &decision_needed(state, &decision)).await;
    }
    let waited = time::elapsed(decision.asked_at, time::now());
    let record = match decision.status {
        DecisionStatus::Pending => {
            // The wait runs from the question, not from this poll.
            let detail =
                format!("waiting for a decision since {} ({})", time::rfc3339(decision.asked_at), decision.question);
            Budget { started: decision.asked_at, allowed: budget.allowed }.check(key, time::now(), &detail)?;
            let mut record = timer.finish(Outcome::NotReady, false, detail, Vec::new());
            record.attempt = state.next_attempt(key);
            record
        }
        DecisionStatus::Rejected => {
            return Err(DrError::DecisionRejected {
                by: decision.decided_by.unwrap_or_default(),
                reason: decision.reason.unwrap_or_default(),
            });
        }
        DecisionStatus::Approved => {
            let approval = Approval {
                by: decision.decided_by.clone().unwrap_or_default(),
                reason: decision.reason.clone().unwrap_or_default(),
            };
            let detail = format!(
                "approved by {} after {} s: {} (asked: {})",
                approval.by,
                waited.as_secs(),
                approval.reason,
                decision.question
            );
            let mut record = timer.finish(Outcome::Ready, true, detail, Vec::new());
            record.attempt = state.next_attempt(key);
            if question == Question::Capacity {
                // Traffic moves on what serves (the report names the shortfall); the RPO gate's
                // decision stays the gate's.
                record.facts.insert(
                    crate::runbook::compute::SHORTFALL_FACT.into(),
                    format!(
                        "traffic moved below the plan's minimum, approved by {} ({}): {}",
                        approval.by, approval.reason, decision.question
                    ),
                );
                return Ok(asked_and_answered(record, &decision));
            }
            if question == Question::DataTier {
                record.facts.insert(
                    SPLIT_FACT.into(),
                    format!(
                        "traffic moved with the data tier split, approved by {} ({}): {}",
                        approval.by, approval.reason, decision.question
                    ),
                );
                return Ok(asked_and_answered(record, &decision));
            }
            record.gate = Some(GateDecision {
                verdict: GateVerdict::Approved,
                lag_seconds: None,
                rpo_seconds: state.plan.targets.rpo().as_secs(),
                reason: decision.question.clone(),
                approval: Some(approval),
            });
            record
        }
    };
    Ok(asked_and_answered(record, &decision))
}

/// The timeline shows the whole wait, from the question to this answer.
fn asked_and_answered(mut record: StepRecord, decision: &Decision) -> StepRecord {
    record.started_at = decision.asked_at;
    record.facts.insert("asked_at".into(), time::rfc3339(decision.asked_at));
    record.facts.insert("deadline".into(), time::rfc3339(decision.deadline));
    record
}

/// The approval a human recorded for this run at its RPO gate, if any: the run's decision in the
/// plan store, approved, for this execution, and decided within the plan's RTO of now (an
/// execution name is unique for 90 days only; a run never lasts longer than its RTO's budgets).
/// Nothing in the run's input counts: preflight asks here each time its gate refuses.
pub async fn recorded_approval(clients: &AwsClients, state: &RunbookState) -> Result<Option<Approval>, DrError> {
    let Some(store) = PlanStore::of_run(clients, &state.run) else { return Ok(None) };
    let Some(decision) = store.verified_decision(&state.plan.name, &state.run.id, Question::RpoGate).await? else {
        return Ok(None);
    };
    if decision.status != DecisionStatus::Approved {
        return Ok(None);
    }
    if let Err(refused) = store.may_approve(&state.plan, &state.run, &decider(&decision)).await {
        tracing::warn!(plan = %state.plan.name, run = %state.run.id, "approval not applied: {refused}");
        return Ok(None);
    }
    if !for_this_run(&decision, state) {
        tracing::warn!(plan = %state.plan.name, run = %state.run.id, "an approved decision of another execution, or too old: not applied");
        return Ok(None);
    }
    Ok(Some(Approval {
        by: decision.decided_by.clone().unwrap_or_default(),
        reason: decision.reason.clone().unwrap_or_default(),
    }))
}

/// Whether an approved decision is this run's: asked by this execution, and decided within the
/// plan's RTO of now (an execution name is unique for 90 days only; a run never lasts longer
/// than its RTO's budgets). The decision step and preflight judge by this one rule.
fn for_this_run(decision: &Decision, state: &RunbookState) -> bool {
    let this_execution = match (&decision.execution_arn, &state.execution) {
        (Some(asked_by), Some(running)) => *asked_by == running.arn,
        _ => true,
    };
    let recent = decision.decided_at.is_some_and(|at| time::elapsed(at, time::now()) <= state.plan.targets.rto());
    this_execution && recent
}

/// Who took a decision, as its record names them.
fn decider(decision: &Decision) -> Principal {
    Principal {
        arn: decision.decided_by.clone().unwrap_or_default(),
        user_id: decision.decided_by_id.clone().unwrap_or_default(),
    }
}

/// "Decision needed", with the commands that answer it.
fn decision_needed(state: &RunbookState, decision: &Decision) -> Notice {
    let run = decision.execution_arn.as_deref().unwrap_or(&decision.run_id);
    let (waits, approve, reject, subject) = match decision.asks {
        Question::RpoGate => (
            "waits at its RPO gate",
            "promote past the RPO",
            "stop here, nothing changed",
            "RPO gate refused the failover",
        ),
        Question::Capacity => (
            "has promoted the database and waits: fewer instances serve than the plan's minimum",
            "move traffic now on what serves",
            "stop here: the database stays promoted, traffic stays where it is",
            "below minimum capacity after the promotion",
        ),
        Question::DataTier => (
            "has promoted part of its data tier and waits: another database was not promoted",
            "move traffic now on the databases promoted; the others stay as they are",
            "stop here: the databases promoted stay promoted, traffic stays where it is",
            "data tier split: a promotion failed after another",
        ),
    };
    let text = [
        format!("{} {} run {} {waits}.", state.run.kind.name(), state.run.direction.move_name(), state.run.id),
        decision.question.clone(),
        format!("Approve: drctl run approve {run} --reason WHY ({approve})"),
        format!("Reject: drctl run reject {run} --reason WHY ({reject})"),
        format!("Waits until {} (then StepTimedOut).", time::rfc3339(decision.deadline)),
    ]
    .join("\n");
    Notice::new(
        NoticeKind::DecisionNeeded,
        &state.plan.name,
        Some(&state.run.id),
        format!("{}: DECISION NEEDED: {subject}", state.plan.name),
        text,
    )
    .fact("asks", decision.asks)
    .fact("question", &decision.question)
    .fact("deadline", decision.deadline)
    .fact("execution", &decision.execution_arn)
}
