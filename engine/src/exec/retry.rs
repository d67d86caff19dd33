//! Retry and Catch around the states that can fail on their own (Task, Parallel, Map): the
//! delay of each retrier (backoff, `MaxDelaySeconds`, full jitter) and the output a catcher hands
//! to its `Next`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::io::{eval_assign, jsonata_output, post_process, result_path};
use super::map::{map, parallel};
use super::task::task;
use super::{At, Flow, Thread, flow, rt};
use crate::definition::{Catcher, Kind, Retrier};
use crate::error::Failure;
use crate::template::Env;

/// Task, Parallel and Map: run with Retry, then Catch.
pub(super) async fn with_retry(th: &mut Thread, at: &At<'_>, raw: Arc<Value>) -> Result<Flow, Failure> {
    let st = at.st;
    let mut counts = vec![0u32; st.retry.len()];
    let mut retry = 0u32;
    loop {
        let at_now = At { st, entered_id: at.entered_id, entered_time: at.entered_time, retry, token: None };
        let attempt = match &st.kind {
            Kind::Task(t) => task(th, &at_now, &raw, t).await,
            Kind::Parallel(bs) => parallel(th, &at_now, &raw, bs).await,
            Kind::Map(m) => map(th, &at_now, &raw, m).await,
            _ => unreachable_kind(&at_now),
        };
        let failure = match attempt {
            Ok(result) => {
                let out = post_process(th, &at_now, raw, result)?;
                return Ok(flow(st, out));
            }
            Err(f) => f,
        };
        if let Some(delay) = retry_delay(&st.retry, &mut counts, &failure) {
            th.run.inner.config.clock.sleep(delay).await;
            retry += 1;
            continue;
        }
        if let Some(c) = st.catch.iter().find(|c| failure.matches(&c.errors)) {
            let out = catch_output(th, &at_now, raw, c, &failure)?;
            return Ok(Flow::Next(c.next, out));
        }
        return Err(failure);
    }
}

pub(super) fn unreachable_kind(at: &At<'_>) -> Result<Value, Failure> {
    Err(rt(at, "internal error: this state type has no task body"))
}

pub(super) fn retry_delay(retriers: &[Retrier], counts: &mut [u32], f: &Failure) -> Option<Duration> {
    let (i, r) = retriers.iter().enumerate().find(|(_, r)| f.matches(&r.errors))?;
    if counts[i] >= r.max_attempts {
        return None;
    }
    let n = counts[i];
    counts[i] += 1;
    let mut secs = r.interval_seconds * r.backoff_rate.powi(n as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max);
    }
    if r.jitter_full {
        secs *= rand::random::<f64>();
    }
    Some(Duration::from_secs_f64(secs.clamp(0.0, 1e9)))
}

pub(super) fn catch_output(
    th: &mut Thread,
    at: &At<'_>,
    raw: Arc<Value>,
    c: &Catcher,
    f: &Failure,
) -> Result<Arc<Value>, Failure> {
    let err_out = f.to_error_output();
    if at.st.jsonata {
        let out = jsonata_output(th, at, &raw, None, Some(&err_out), c.assign.as_ref(), c.output.as_ref())?;
        return Ok(Arc::new(out.unwrap_or(err_out)));
    }
    let ctx = || th.context(at, None);
    let assign = {
        let env = Env::new(&err_out, &th.vars, &ctx);
        eval_assign(at, c.assign.as_ref(), &env)?
    };
    let out = result_path(at, &c.result_path, raw, err_out)?;
    th.vars.assign(assign);
    Ok(out)
}
