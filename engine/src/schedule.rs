//! Schedules as plain data: one line of text a user can paste back.
//!
//! The format is `v1:` followed by the thread of each step, comma
//! separated, e.g. `v1:0,0,1,0`. The version prefix lets the format change
//! without misreading old strings.

use std::fmt;

use crate::ThreadId;

const PREFIX: &str = "v1:";

/// Formats a schedule (as in [`ExecutionReport::schedule`](crate::ExecutionReport))
/// for printing.
pub fn format_schedule(schedule: &[ThreadId]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 2 * schedule.len());
    out.push_str(PREFIX);
    for (i, t) in schedule.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&t.to_string());
    }
    out
}

/// A schedule string that [`parse_schedule`] could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleParseError {
    pub input: String,
    pub reason: &'static str,
}

impl fmt::Display for ScheduleParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read schedule {:?}: {}; expected something like \"v1:0,0,1\" \
             as printed with a failure report",
            self.input, self.reason
        )
    }
}

impl std::error::Error for ScheduleParseError {}

/// Reads a schedule printed by [`format_schedule`].
pub fn parse_schedule(text: &str) -> Result<Vec<ThreadId>, ScheduleParseError> {
    let err = |reason| ScheduleParseError {
        input: text.to_owned(),
        reason,
    };
    let body = text
        .trim()
        .strip_prefix(PREFIX)
        .ok_or_else(|| err("it does not start with the version tag \"v1:\""))?;
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(',')
        .map(|t| {
            t.trim()
                .parse()
                .map_err(|_| err("a step is not a thread number"))
        })
        .collect()
}
