//! Cron jobs that only trigger work, and a watchdog that notices when one stops ticking.
//!
//! tokio-cron-scheduler does the timing. Its known pitfalls are handled here and in the
//! daemon: it does not prevent overlapping runs (the trigger is a non-blocking "start unless
//! already running"), its time zones are fixed offsets (we use UTC only), a repeated job can
//! stop firing once its next tick falls into the past (an open upstream bug: the watchdog
//! computes on its own when each job is due and reports a stall), and it logs errors when
//! dropped without a shutdown (the daemon always shuts it down).

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::{events, schedule::Schedule};

/// What a tick does. It must return quickly: it only starts work.
pub type Trigger = Arc<dyn Fn() + Send + Sync>;

/// One cron job's timing, as the watchdog sees it.
#[derive(Debug)]
struct TickWatch {
    name: String,
    schedule: Schedule,
    /// When the next tick is due.
    due: Mutex<DateTime<Utc>>,
    stalled: AtomicBool,
}

impl TickWatch {
    fn ticked(&self, now: DateTime<Utc>) {
        let next = self.schedule.next_after(now).unwrap_or(now);
        *self.due.lock().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// A tick is late once it is overdue by its own interval, and never by less than 10 s
    /// (timers and a busy machine jitter).
    fn is_late(&self, now: DateTime<Utc>) -> bool {
        let due = *self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let interval = self
            .schedule
            .next_after(due)
            .map_or(TimeDelta::zero(), |next| next - due);
        now > due + interval.max(TimeDelta::seconds(10))
    }
}

/// Whether every cron job ticks on time. Shared with `/healthz`.
#[derive(Debug, Default)]
pub struct ScheduleHealth {
    jobs: Mutex<Vec<Arc<TickWatch>>>,
}

impl TickWatch {
    fn new(name: &str, schedule: &Schedule, now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            schedule: schedule.clone(),
            due: Mutex::new(schedule.next_after(now).unwrap_or(now)),
            stalled: AtomicBool::new(false),
        })
    }
}

impl ScheduleHealth {
    #[cfg(test)]
    fn watch(&self, name: &str, schedule: &Schedule, now: DateTime<Utc>) -> Arc<TickWatch> {
        let watch = TickWatch::new(name, schedule, now);
        self.watch_only(vec![watch.clone()]);
        watch
    }

    /// From now on, these jobs are the schedule (a reload replaces them all).
    fn watch_only(&self, watches: Vec<Arc<TickWatch>>) {
        *self.jobs.lock().unwrap_or_else(PoisonError::into_inner) = watches;
    }

    /// Re-evaluates every job at `now`, logging each change (`schedule_stalled`,
    /// `schedule_recovered`). Returns the names of the stalled jobs.
    pub fn check(&self, now: DateTime<Utc>) -> Vec<String> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stalled = Vec::new();
        for job in jobs.iter() {
            let late = job.is_late(now);
            let was_late = job.stalled.swap(late, Ordering::SeqCst);
            if late && !was_late {
                let due = *job.due.lock().unwrap_or_else(PoisonError::into_inner);
                events::schedule_stalled(&job.name, job.schedule.as_str(), due);
            } else if !late && was_late {
                events::schedule_recovered(&job.name);
            }
            if late {
                stalled.push(job.name.clone());
            }
        }
        crate::metrics::metrics()
            .schedule_healthy
            .set(i64::from(stalled.is_empty()));
        stalled
    }

    /// The stalled jobs as of the last `check`.
    pub fn stalled(&self) -> Vec<String> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.iter()
            .filter(|job| job.stalled.load(Ordering::SeqCst))
            .map(|job| job.name.clone())
            .collect()
    }
}

/// The running cron jobs.
pub struct Scheduler {
    inner: JobScheduler,
    pub health: Arc<ScheduleHealth>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts one cron job per `(name, schedule, trigger)`, in UTC; from then on `health`
    /// watches these jobs and no others.
    pub async fn start(
        jobs: Vec<(String, Schedule, Trigger)>,
        health: Arc<ScheduleHealth>,
    ) -> anyhow::Result<Self> {
        let inner = JobScheduler::new()
            .await
            .context("creating the scheduler")?;
        let now = Utc::now();
        let mut watches = Vec::new();
        for (name, schedule, trigger) in jobs {
            let watch = TickWatch::new(&name, &schedule, now);
            watches.push(watch.clone());
            let job = Job::new_async(schedule.as_str(), move |_id, _scheduler| {
                watch.ticked(Utc::now());
                trigger();
                Box::pin(async {})
            })
            .with_context(|| format!("scheduling {name} with {:?}", schedule.as_str()))?;
            inner.add(job).await.context("adding a cron job")?;
        }
        inner.start().await.context("starting the scheduler")?;
        // Only once every job runs: a reload whose jobs fail to start keeps the old ones watched.
        health.watch_only(watches);
        Ok(Self { inner, health })
    }

    /// Stops the jobs cleanly (dropping the scheduler instead makes it log errors).
    pub async fn shutdown(mut self) {
        if let Err(err) = self.inner.shutdown().await {
            tracing::warn!(error = %err, "scheduler_shutdown_failed");
        }
    }
}

/// How often the watchdog looks at the schedule.
pub const WATCHDOG_PERIOD: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn a_job_is_healthy_until_overdue_by_its_interval() {
        let health = ScheduleHealth::default();
        let every_minute = Schedule::parse("0 * * * * *").expect("valid");
        health.watch("bot-a", &every_minute, at("2024-01-01T10:00:30Z"));
        // Due at 10:01:00; late once past 10:02:00.
        assert!(health.check(at("2024-01-01T10:01:50Z")).is_empty());
        assert_eq!(health.check(at("2024-01-01T10:02:01Z")), ["bot-a"]);
        assert_eq!(health.stalled(), ["bot-a"]);
    }

    #[test]
    fn a_tick_clears_a_stall() {
        let health = ScheduleHealth::default();
        let every_second = Schedule::parse("* * * * * *").expect("valid");
        let watch = health.watch("bot-a", &every_second, at("2024-01-01T10:00:00Z"));
        // Fast schedules still get 10 s of slack.
        assert!(health.check(at("2024-01-01T10:00:09Z")).is_empty());
        assert_eq!(health.check(at("2024-01-01T10:00:12Z")), ["bot-a"]);
        watch.ticked(at("2024-01-01T10:00:12Z"));
        assert!(health.check(at("2024-01-01T10:00:13Z")).is_empty());
        assert!(health.stalled().is_empty());
    }
}
