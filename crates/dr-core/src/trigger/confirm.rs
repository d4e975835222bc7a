//! Confirming an outage before acting on an alarm: a false failover is an outage of its own.
//!
//! The Route53 `HealthCheckStatus` metric (namespace `AWS/Route53`, published in us-east-1, one
//! datapoint a minute, 1 healthy / 0 unhealthy) must be unhealthy in **every** minute of the
//! confirmation window that follows the alarm, with no minute missing. Healthy again inside the
//! window is a flap. An event handled late (retried deliveries, up to an hour) stretches the
//! window to the newest minute that must have landed: Paris must still be down now, not only
//! back then. Optionally, an HTTP probe of the primary endpoint from the DR region must
//! fail too.

use std::collections::HashMap;
use std::time::Duration;

use super::context::TriggerContext;
use super::outcome::{Decision, TriggerOutcome};
use super::probe::{ProbeResult, probe};
use crate::aws::AwsClients;
use crate::aws::metrics::{datapoints, per_minute};
use crate::error::DrError;
use crate::plan::{Plan, Trigger};
use crate::time::{self, Timestamp};

/// How the trigger came to judge an alarm.
#[derive(Debug, Clone, Copy)]
pub(super) enum Judged {
    /// Its move to ALARM arrived: the window after the move is waited for until `deadline`.
    OnEvent { deadline: tokio::time::Instant },
    /// The schedule found it still in ALARM: the last whole window is judged, without waiting.
    OnSchedule,
}

/// A minute's datapoint usually lands within this long after the minute ends ...
pub const METRIC_SETTLE: Duration = Duration::from_secs(60);
/// ... and sometimes this much later: missing last minutes are waited for, not held against.
pub const LATE_DATA_GRACE: Duration = Duration::from_secs(180);

/// What the health-check metric says about the window after an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Unhealthy in every minute of the window.
    Confirmed { evidence: String },
    /// Healthy again inside the window: a flap.
    Recovered { evidence: String },
    /// The window (and the time its last datapoint needs to land) has not elapsed yet.
    Pending,
    /// The window elapsed with minutes missing: the outage cannot be confirmed.
    Unconfirmed { evidence: String },
}

/// The minutes (their start, in seconds since the epoch) the window covers: whole minutes after
/// the alarm, so that healthy samples from before the failure, in the alarm's own minute, do not
/// count.
pub fn window_minutes(alarm_at: Timestamp, window: Duration) -> Vec<i64> {
    let alarm_secs = time::epoch_seconds(alarm_at);
    let first = alarm_secs.div_euclid(60) * 60 + if alarm_secs.rem_euclid(60) > 0 { 60 } else { 0 };
    let count = i64::try_from(window.as_secs().div_ceil(60)).unwrap_or(i64::MAX);
    (0..count).map(|i| first + i * 60).collect()
}

/// Judges the datapoints (minute start, Maximum of HealthCheckStatus) seen so far.
pub fn judge(alarm_at: Timestamp, window: Duration, datapoints: &[(i64, f64)], now: Timestamp) -> Confirmation {
    let base = window_minutes(alarm_at, window);
    let (Some(&first), Some(&last)) = (base.first(), base.last()) else {
        return Confirmation::Unconfirmed { evidence: "empty confirmation window".to_string() };
    };
    let seen: HashMap<i64, f64> = datapoints.iter().copied().collect();
    if let Some((minute, _)) =
        seen.iter().filter(|(minute, max)| **minute >= first && **max >= 1.0).min_by_key(|(m, _)| **m)
    {
        return Confirmation::Recovered {
            evidence: format!("health check healthy again in the minute of {}", minute_text(*minute)),
        };
    }
    let window_end = time::from_epoch_seconds(last + 60);
    if now < time::after(window_end, METRIC_SETTLE) {
        return Confirmation::Pending;
    }
    // Handled late: every minute up to the newest one that must have landed by now.
    let landed_until = time::before(now, METRIC_SETTLE + LATE_DATA_GRACE);
    let late_span =
        Duration::from_secs(time::elapsed(time::from_epoch_seconds(first), landed_until).as_secs() / 60 * 60);
    let minutes = window_minutes(alarm_at, window.max(late_span));
    let missing: Vec<i64> = minutes.iter().copied().filter(|minute| !seen.contains_key(minute)).collect();
    let newest_seen = seen.keys().copied().filter(|m| *m >= first).max();
    let only_trailing_missing = missing.iter().all(|m| newest_seen.is_none_or(|newest| *m > newest));
    if !missing.is_empty() && only_trailing_missing && now < time::after(window_end, METRIC_SETTLE + LATE_DATA_GRACE) {
        // Route53's datapoints sometimes land a few minutes late: wait for the last ones.
        return Confirmation::Pending;
    }
    let span = format!("{} to {}", minute_text(first), minute_text(minutes.last().copied().unwrap_or(last) + 60));
    if missing.is_empty() {
        Confirmation::Confirmed {
            evidence: format!("HealthCheckStatus unhealthy in all {} minutes from {span}", minutes.len()),
        }
    } else {
        Confirmation::Unconfirmed {
            evidence: format!(
                "HealthCheckStatus has {} of {} minutes from {span}",
                minutes.len() - missing.len(),
                minutes.len()
            ),
        }
    }
}

fn minute_text(minute: i64) -> String {
    time::rfc3339(time::from_epoch_seconds(minute))
}

/// Reads the health check's `HealthCheckStatus` (Maximum per minute) from the alarm's minute on,
/// and judges it.
pub async fn check_health_metric(
    route53_metrics: &aws_sdk_cloudwatch::Client,
    health_check_id: &str,
    alarm_at: Timestamp,
    window: Duration,
    now: Timestamp,
) -> Result<Confirmation, DrError> {
    let metric = per_minute("AWS/Route53", "HealthCheckStatus", &[("HealthCheckId", health_check_id)], "Maximum");
    // From the alarm's minute, on a whole minute: datapoints are one per minute, at its start.
    let alarm_secs = time::epoch_seconds(alarm_at);
    let start = time::from_epoch_seconds(alarm_secs - alarm_secs.rem_euclid(60));
    let points = datapoints(route53_metrics, metric, start, time::after(now, Duration::from_secs(60))).await?;
    let minutes: Vec<(i64, f64)> = points
        .into_iter()
        .map(|(at, value)| {
            let secs = time::epoch_seconds(at);
            (secs - secs.rem_euclid(60), value)
        })
        .collect();
    Ok(judge(alarm_at, window, &minutes, now))
}

/// Where the schedule's window starts: the last whole window whose datapoints must all have
/// landed by now, Route 53's late ones included ([`METRIC_SETTLE`] and [`LATE_DATA_GRACE`]), and
/// never before the move to ALARM. A window ending later would still be waiting for its last
/// minutes on every run of the schedule, and answer `Pending` for as long as the data is late.
pub fn schedule_anchor(alarm_at: Timestamp, window: Duration, now: Timestamp) -> Timestamp {
    time::before(now, window + METRIC_SETTLE + LATE_DATA_GRACE + Duration::from_secs(60)).max(alarm_at)
}

/// Confirms the outage: on an event, waits out the window after the move to ALARM (at most
/// until the invocation's deadline: then `Pending`); on the schedule, judges the last whole
/// window whose data has landed, without waiting. `Ok(Ok(evidence))`: confirmed; `Ok(Err(outcome))`:
/// not.
pub(super) async fn confirm_outage(
    ctx: &TriggerContext,
    clients: &AwsClients,
    plan: &Plan,
    trigger: &Trigger,
    health_check_id: &str,
    alarm_at: Timestamp,
    judged: Judged,
) -> Result<Result<Vec<String>, TriggerOutcome>, DrError> {
    let window = trigger.confirmation_window();
    let pending = |why: String| Ok(Err(TriggerOutcome::new(Decision::Pending, "", Some(plan), why)));
    let confirmation = match judged {
        Judged::OnEvent { deadline } => {
            let waited = tokio::time::timeout_at(deadline, async {
                loop {
                    let now = time::now();
                    match check_health_metric(&clients.route53_metrics, health_check_id, alarm_at, window, now).await? {
                        Confirmation::Pending => tokio::time::sleep(ctx.confirmation_poll).await,
                        decided => return Ok::<_, DrError>(decided),
                    }
                }
            })
            .await;
            match waited {
                Ok(decided) => decided?,
                Err(_) => {
                    return pending(format!(
                        "the confirmation window's data had not landed after {} s: the scheduled re-evaluation decides",
                        ctx.confirmation_wait.as_secs()
                    ));
                }
            }
        }
        Judged::OnSchedule => {
            let now = time::now();
            let anchor = schedule_anchor(alarm_at, window, now);
            check_health_metric(&clients.route53_metrics, health_check_id, anchor, window, now).await?
        }
    };
    let mut evidence = match confirmation {
        Confirmation::Confirmed { evidence } => vec![evidence],
        Confirmation::Recovered { evidence } => {
            return Ok(Err(TriggerOutcome::new(Decision::Flap, "", Some(plan), evidence)));
        }
        Confirmation::Unconfirmed { evidence } => {
            tracing::error!(plan = %plan.name, "{evidence}: not failing over automatically");
            return Ok(Err(TriggerOutcome::new(Decision::Unconfirmed, "", Some(plan), evidence)));
        }
        Confirmation::Pending => return pending("the last window's data has not landed yet".to_string()),
    };
    if let Some(url) = &trigger.probe_url {
        match probe(url).await {
            ProbeResult::Answered(status) => {
                let detail =
                    format!("probe of {url} from {} answered HTTP {status}: the primary serves", plan.dr_region);
                return Ok(Err(TriggerOutcome::new(Decision::Unconfirmed, "", Some(plan), detail)));
            }
            ProbeResult::Failed(why) => evidence.push(format!("probe of {url} from {} failed: {why}", plan.dr_region)),
        }
    }
    Ok(Ok(evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(180);

    fn at(seconds: i64) -> Timestamp {
        time::from_epoch_seconds(seconds)
    }

    fn alarm_at() -> Timestamp {
        at(1_000_020)
    }

    #[test]
    fn the_window_starts_at_the_first_whole_minute_after_the_alarm() {
        assert_eq!(window_minutes(alarm_at(), WINDOW), vec![1_000_020, 1_000_080, 1_000_140]);
        assert_eq!(window_minutes(at(1_000_080), Duration::from_secs(150)), vec![1_000_080, 1_000_140, 1_000_200]);
        assert_eq!(window_minutes(at(1_000_050), Duration::from_secs(60)), vec![1_000_080]);
    }

    #[test]
    fn every_minute_unhealthy_confirms_once_the_window_has_settled() {
        let points = [(1_000_020, 0.0), (1_000_080, 0.0), (1_000_140, 0.0)];
        assert_eq!(judge(alarm_at(), WINDOW, &points, at(1_000_200)), Confirmation::Pending);
        assert!(matches!(judge(alarm_at(), WINDOW, &points, at(1_000_260)), Confirmation::Confirmed { .. }));
    }

    #[test]
    fn healthy_again_inside_the_window_is_a_flap_at_once() {
        let points = [(1_000_020, 0.0), (1_000_080, 1.0)];
        assert!(matches!(judge(alarm_at(), WINDOW, &points, at(1_000_150)), Confirmation::Recovered { .. }));
    }

    #[test]
    fn healthy_before_the_alarm_does_not_count() {
        let points = [(999_960, 1.0), (1_000_020, 0.0), (1_000_080, 0.0), (1_000_140, 0.0)];
        assert!(matches!(judge(alarm_at(), WINDOW, &points, at(1_000_300)), Confirmation::Confirmed { .. }));
    }

    #[test]
    fn handled_late_the_primary_must_still_be_down_now() {
        let late = at(1_000_020 + 900);
        let mut points: Vec<(i64, f64)> = (0..11).map(|i| (1_000_020 + i * 60, 0.0)).collect();
        let Confirmation::Confirmed { evidence } = judge(alarm_at(), WINDOW, &points, late) else {
            panic!("confirmed expected");
        };
        assert!(evidence.contains("all 11 minutes"), "{evidence}");
        points[9].1 = 1.0;
        assert!(matches!(judge(alarm_at(), WINDOW, &points, late), Confirmation::Recovered { .. }));
        points.truncate(8);
        assert!(matches!(judge(alarm_at(), WINDOW, &points, late), Confirmation::Unconfirmed { .. }));
    }

    #[test]
    fn a_missing_minute_leaves_the_outage_unconfirmed() {
        let points = [(1_000_020, 0.0), (1_000_140, 0.0)];
        assert!(matches!(judge(alarm_at(), WINDOW, &points, at(1_000_300)), Confirmation::Unconfirmed { .. }));
    }

    #[test]
    fn missing_last_minutes_are_waited_for_within_the_grace() {
        let points = [(1_000_020, 0.0), (1_000_080, 0.0)];
        assert_eq!(judge(alarm_at(), WINDOW, &points, at(1_000_260)), Confirmation::Pending);
        assert!(matches!(judge(alarm_at(), WINDOW, &points, at(1_000_260 + 180)), Confirmation::Unconfirmed { .. }));
    }

    /// Route 53's minutes landing as late as the documented delay allows: every judgement on the
    /// schedule decides (a sustained outage is confirmed), at any second of the minute; with the
    /// window anchored only one settle time back, the newest minutes were always still missing
    /// and every run answered Pending.
    #[test]
    fn late_data_never_keeps_the_schedule_pending() {
        let window = Duration::from_secs(180);
        let alarm_at = time::from_epoch_seconds(1_000_000_000);
        for offset in 0..60 {
            let now = time::after(alarm_at, Duration::from_secs(1_800 + offset));
            let landed_until = time::epoch_seconds(time::before(now, METRIC_SETTLE + LATE_DATA_GRACE));
            let minutes: Vec<(i64, f64)> = (0..)
                .map(|i| time::epoch_seconds(alarm_at) / 60 * 60 + i * 60)
                .take_while(|minute| minute + 60 <= landed_until)
                .map(|minute| (minute, 0.0))
                .collect();
            let judged = judge(schedule_anchor(alarm_at, window, now), window, &minutes, now);
            assert!(matches!(judged, Confirmation::Confirmed { .. }), "at +{offset} s: {judged:?}");
        }
    }
}
