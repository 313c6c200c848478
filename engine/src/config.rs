//! Exploration settings.

/// Limits of one exploration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Maximum number of preemptions per execution (CHESS-style bounding).
    /// `None` explores every Mazurkiewicz trace (full optimal DPOR).
    pub preemption_bound: Option<u32>,
    /// Maximum scheduling points in one execution; an execution that needs
    /// more is aborted and reported.
    pub max_branches: u64,
    /// Stop after this many executions (completed or aborted).
    pub max_executions: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preemption_bound: None,
            max_branches: 100_000,
            max_executions: None,
        }
    }
}
