//! A small SQL classifier: which tables (and, where cheap, which row) a
//! statement string reads or writes.
//!
//! It lexes the text properly (quoted identifiers, string literals in both
//! dialects, dollar quotes, comments, casts) so that keywords or `;` inside
//! literals and comments never mislead it, then looks only at what matters
//! for conflicts:
//!
//! * the statement head (`SELECT`, `INSERT`, `UPDATE`, DDL, `BEGIN`, ...),
//! * the table after `FROM`, `JOIN`, `USING`, `INTO`, `UPDATE`,
//!   `DELETE FROM`, `TABLE`, `REFERENCES`, at any nesting depth that is a
//!   query (so `extract(year FROM ts)` is not a table, but a subquery is),
//! * `FOR UPDATE` / `FOR NO KEY UPDATE`, which makes the reads writes: the
//!   rows are locked, so such a select must order against writes and
//!   against other locking selects,
//! * a row: a top-level `WHERE <key> = <literal or placeholder>` conjunct on
//!   a single-table `SELECT`/`UPDATE`/`DELETE`, or the key column of a
//!   single-row `INSERT ... VALUES`.
//!
//! Anything else it is unsure about yields a [`Fallback`] so the caller
//! keeps the coarse socket key; it never answers "no conflict" for text it
//! did not understand.
//!
//! # Which column is a row key
//!
//! Row independence is only sound if a table's rows are always named
//! through the same unique column. With [`RowPolicy::heuristic`] that column
//! is `id`, `<table>_id` or `<singular table>_id` (`accounts.account_id`);
//! a declared column ([`RowPolicy::declare`]) replaces the guess for its
//! table. Other `*_id` columns are usually foreign keys that select many
//! rows, so an equality on them stays table-level. Assumptions, stated
//! plainly: a table does not have two different columns that this guess
//! takes for its key, and no secondary unique constraint, foreign key,
//! trigger or view ties two rows together (when they do, use
//! [`RowPolicy::off`] or declare nothing for that table).
//!
//! # Transactions
//!
//! Inside `BEGIN ... COMMIT`, other sessions see the writes only at
//! `COMMIT`. [`SqlSession`] remembers the writes of the open transaction and
//! reports them again at `COMMIT`, so an order "reader before the commit /
//! after the commit" is explored too. `ROLLBACK` forgets them. Under
//! REPEATABLE READ and SERIALIZABLE (MySQL's default) the statement that
//! takes the transaction's snapshot is also ordered against every commit,
//! through the pseudo-table [`COMMITS_TABLE`]; see [`SqlSession`].
//!
//! # Layers
//!
//! One file per layer:
//!
//! * `lexer`: tokens, with both dialects' quoting and comments,
//! * `keywords`: the words acted on, and their lookup table,
//! * `literals`: canonical names and row values,
//! * `policy`: [`RowPolicy`], which column names a table's rows,
//! * `statement`: splitting a string into statements and dispatching on
//!   the statement head,
//! * `dml`: tables read and written by `SELECT`/`INSERT`/`UPDATE`/`DELETE`,
//! * `rows`: the one row a statement names, if any,
//! * `ddl`: tables touched by DDL, `LOCK` and `COPY`,
//! * `txn`: transaction statements and [`SqlSession`], the memory of an
//!   open transaction.

use crate::{
    fnv1a64, AccessKind, Classification, Fallback, Fnv1a, InlineStr, RowKey, RowValue, TableAccess,
    COLUMN_CAP, TABLE_CAP, VALUE_DISPLAY_CAP,
};

mod ddl;
mod dml;
mod keywords;
mod lexer;
mod literals;
mod policy;
mod rows;
mod statement;
mod txn;

use ddl::*;
use dml::*;
use keywords::*;
use lexer::*;
use literals::*;
use rows::*;
use statement::*;

pub use literals::{canonical_name, canonical_value};
pub use policy::RowPolicy;
pub(crate) use statement::{classify_single, classify_sql_append};
pub use statement::{classify_sql, StatementKind};
pub(crate) use txn::apply_txn;
use txn::*;
pub use txn::{SqlSession, COMMITS_TABLE};

/// Longest statement string classified; longer text falls back.
pub const SCAN_CAP: usize = 16 * 1024;
/// Most SQL bytes one `send` gets classified, over all the messages it
/// holds; requests past it fall back ([`Fallback::TooLong`]) while framing
/// goes on, so a huge pipelined send costs a bounded amount of parsing.
pub const SEND_SCAN_BUDGET: usize = 64 * 1024;
/// Deepest parenthesis nesting followed; deeper text falls back.
const MAX_DEPTH: usize = 32;
/// Most CTE names remembered per statement.
const MAX_CTES: usize = 8;
/// Most declared key columns in a [`RowPolicy`].
pub const MAX_DECLARED_KEYS: usize = 8;

/// Which lexical rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `"ident"`, `$1`, `$tag$...$tag$`, nested `/* */`, `?` an operator.
    Postgres,
    /// `` `ident` ``, `"string"`, backslash escapes, `#` comments, `?`
    /// placeholders, `/*! ... */` executable comments (which fall back).
    Mysql,
}
