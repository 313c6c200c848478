//! The library's settings from the environment (initialisation only; may
//! allocate).
//!
//! A value that cannot be understood is not silently replaced: each one
//! gets one `frontrun:` line on stderr naming the variable, the value given
//! and the value used instead. An empty value counts as unset. The names
//! are in `frontrun_ring::env`.

use std::ffi::OsString;

use frontrun_ring::{
    clamp_capacity, env, DEFAULT_CAPACITY, DEFAULT_WAIT, MAX_CAPACITY, MIN_CAPACITY,
};

/// A setting and, when the environment's value was malformed, the line
/// that says so.
#[derive(Debug, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub complaint: Option<String>,
}

impl<T> Setting<T> {
    fn ok(value: T) -> Self {
        Setting {
            value,
            complaint: None,
        }
    }

    fn replaced(value: T, complaint: String) -> Self {
        Setting {
            value,
            complaint: Some(complaint),
        }
    }

    /// The value, after printing the complaint if there is one.
    pub fn reported(self) -> T {
        if let Some(line) = &self.complaint {
            eprintln!("{line}");
        }
        self.value
    }
}

fn text(raw: Option<OsString>) -> Option<Result<String, OsString>> {
    let raw = raw?;
    if raw.is_empty() {
        return None;
    }
    Some(raw.into_string())
}

/// `FRONTRUN_MUTEX`: `1` turns mutex events on from the start, `0` leaves
/// them to the consumer.
pub fn mutex_from_env(raw: Option<OsString>) -> Setting<bool> {
    match text(raw) {
        None => Setting::ok(false),
        Some(Ok(v)) if v == "1" => Setting::ok(true),
        Some(Ok(v)) if v == "0" => Setting::ok(false),
        Some(v) => Setting::replaced(
            false,
            format!(
                "frontrun: {}={}: expected 1 or 0; using 0 (mutex events only while an exploration asks for them)",
                env::ENV_MUTEX,
                shown(&v)
            ),
        ),
    }
}

/// `FRONTRUN_RING_WAIT_US`: the producer wait on a full ring, as
/// nanoseconds.
pub fn wait_from_env(raw: Option<OsString>) -> Setting<u64> {
    let default_ns = DEFAULT_WAIT.as_nanos() as u64;
    let given = match text(raw) {
        None => return Setting::ok(default_ns),
        Some(v) => v,
    };
    match given
        .as_ref()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(us) => Setting::ok(us.saturating_mul(1000)),
        None => Setting::replaced(
            default_ns,
            format!(
                "frontrun: {}={}: expected a whole number of microseconds; using {}",
                env::ENV_RING_WAIT_US,
                shown(&given),
                default_ns / 1000
            ),
        ),
    }
}

/// `FRONTRUN_RING_SLOTS`: the capacity of a ring the library creates,
/// rounded up to a power of two (silently: that is what the variable
/// documents) within the allowed range (with a word when outside it).
pub fn slots_from_env(raw: Option<OsString>) -> Setting<u64> {
    let given = match text(raw) {
        None => return Setting::ok(DEFAULT_CAPACITY),
        Some(v) => v,
    };
    let parsed = given
        .as_ref()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(requested) = parsed else {
        return Setting::replaced(
            DEFAULT_CAPACITY,
            format!(
                "frontrun: {}={}: expected a whole number of slots; using {DEFAULT_CAPACITY}",
                env::ENV_RING_SLOTS,
                shown(&given)
            ),
        );
    };
    let used = clamp_capacity(requested);
    if (MIN_CAPACITY..=MAX_CAPACITY).contains(&requested) {
        return Setting::ok(used);
    }
    Setting::replaced(
        used,
        format!(
            "frontrun: {}={requested}: outside {MIN_CAPACITY} to {MAX_CAPACITY} slots; using {used}",
            env::ENV_RING_SLOTS
        ),
    )
}

fn shown(v: &Result<String, OsString>) -> String {
    match v {
        Ok(s) => format!("{s:?}"),
        Err(raw) => format!("{raw:?} (not UTF-8)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<OsString> {
        Some(OsString::from(s))
    }

    #[test]
    fn mutex_accepts_1_and_0_and_names_anything_else() {
        assert_eq!(mutex_from_env(None), Setting::ok(false));
        assert_eq!(mutex_from_env(os("")), Setting::ok(false));
        assert_eq!(mutex_from_env(os("1")), Setting::ok(true));
        assert_eq!(mutex_from_env(os("0")), Setting::ok(false));
        let yes = mutex_from_env(os("yes"));
        assert!(!yes.value);
        assert_eq!(
            yes.complaint.unwrap(),
            "frontrun: FRONTRUN_MUTEX=\"yes\": expected 1 or 0; using 0 (mutex events only while an \
             exploration asks for them)"
        );
    }

    #[test]
    fn a_malformed_wait_falls_back_to_the_default_with_a_word() {
        assert_eq!(wait_from_env(os("250")), Setting::ok(250_000));
        assert_eq!(wait_from_env(os("0")), Setting::ok(0));
        for bad in ["abc", "-5", "1e6", "2.5"] {
            let s = wait_from_env(os(bad));
            assert_eq!(s.value, 20_000_000, "{bad}");
            assert_eq!(
                s.complaint.unwrap(),
                format!("frontrun: FRONTRUN_RING_WAIT_US={bad:?}: expected a whole number of microseconds; using 20000")
            );
        }
    }

    #[test]
    fn slots_are_rounded_quietly_and_clamped_or_replaced_with_a_word() {
        assert_eq!(slots_from_env(None), Setting::ok(DEFAULT_CAPACITY));
        assert_eq!(slots_from_env(os("1000")), Setting::ok(1024));
        for bad in ["abc", "-5", "1e6"] {
            let s = slots_from_env(os(bad));
            assert_eq!(s.value, DEFAULT_CAPACITY);
            assert_eq!(
                s.complaint.unwrap(),
                format!("frontrun: FRONTRUN_RING_SLOTS={bad:?}: expected a whole number of slots; using 65536")
            );
        }
        let small = slots_from_env(os("10"));
        assert_eq!(small.value, MIN_CAPACITY);
        assert_eq!(
            small.complaint.unwrap(),
            "frontrun: FRONTRUN_RING_SLOTS=10: outside 64 to 16777216 slots; using 64"
        );
        assert_eq!(slots_from_env(os("99999999999")).value, MAX_CAPACITY);
    }
}
