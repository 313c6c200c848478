//! Row policy: which column of a table names its rows.

use super::*;

/// How rows are recognised.
#[derive(Clone, Copy, Debug)]
pub struct RowPolicy {
    pub(super) heuristic: bool,
    pub(super) declared: [(InlineStr<TABLE_CAP>, InlineStr<TABLE_CAP>); MAX_DECLARED_KEYS],
    pub(super) n_declared: u8,
}

impl Default for RowPolicy {
    fn default() -> Self {
        RowPolicy::heuristic()
    }
}

impl RowPolicy {
    /// `id`, `<table>_id`, `<singular>_id`, plus any declared columns.
    pub const fn heuristic() -> Self {
        RowPolicy {
            heuristic: true,
            declared: [(InlineStr::new(), InlineStr::new()); MAX_DECLARED_KEYS],
            n_declared: 0,
        }
    }

    /// Only declared columns; with none declared, every access is
    /// table-level.
    pub const fn off() -> Self {
        RowPolicy {
            heuristic: false,
            declared: [(InlineStr::new(), InlineStr::new()); MAX_DECLARED_KEYS],
            n_declared: 0,
        }
    }

    /// Declares `column` the single-column primary key of `table` (names
    /// are canonicalised like SQL text). False when the policy is full.
    pub fn declare(&mut self, table: &str, column: &str) -> bool {
        if self.n_declared as usize >= MAX_DECLARED_KEYS {
            return false;
        }
        let t = canonical_name(table.as_bytes());
        let c = canonical_name(column.as_bytes());
        self.declared[self.n_declared as usize] = (t, c);
        self.n_declared += 1;
        true
    }

    /// Whether `column` (canonical) names rows of `table` (canonical).
    pub fn is_key_column(&self, table: &[u8], column: &[u8]) -> bool {
        let mut table_declared = false;
        for (t, c) in &self.declared[..self.n_declared as usize] {
            if t.as_bytes() == table {
                table_declared = true;
                if c.as_bytes() == column {
                    return true;
                }
            }
        }
        if table_declared || !self.heuristic {
            return false;
        }
        if column == b"id" {
            return true;
        }
        let Some(stem) = column.strip_suffix(b"_id") else {
            return false;
        };
        if stem.is_empty() {
            return false;
        }
        if stem == table {
            return true;
        }
        if let Some(t) = table.strip_suffix(b"ies") {
            if stem.len() == t.len() + 1 && stem.starts_with(t) && stem.ends_with(b"y") {
                return true;
            }
        }
        if let Some(t) = table.strip_suffix(b"es") {
            if stem == t {
                return true;
            }
        }
        if let Some(t) = table.strip_suffix(b"s") {
            if stem == t {
                return true;
            }
        }
        false
    }
}
