//! Keywords: the words the classifier acts on, looked up in an
//! open-addressing table built at compile time.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kw {
    None,
    Select,
    With,
    Values,
    Table,
    Insert,
    Replace,
    Update,
    Delete,
    Merge,
    From,
    Join,
    Into,
    Using,
    Where,
    Set,
    For,
    No,
    Key,
    Share,
    On,
    Conflict,
    Duplicate,
    Do,
    Then,
    Only,
    Lateral,
    As,
    And,
    Or,
    Between,
    Not,
    Materialized,
    Recursive,
    Distinct,
    References,
    Ignore,
    Returning,
    Group,
    Order,
    Limit,
    Offset,
    Having,
    Window,
    Union,
    Intersect,
    Except,
    Fetch,
    Lock,
    Inner,
    Left,
    Right,
    Full,
    Cross,
    Natural,
    Outer,
    Straight,
    Create,
    Drop,
    Alter,
    Truncate,
    Copy,
    Explain,
    Analyze,
    Verbose,
    If,
    Exists,
    Index,
    View,
    Temporary,
    Unique,
    Concurrently,
    Rename,
    To,
    Begin,
    Start,
    Commit,
    End,
    Rollback,
    Abort,
    Savepoint,
    Release,
    Show,
    Reset,
    Discard,
    Deallocate,
    Listen,
    Unlisten,
    Use,
    Describe,
    Prepare,
    Transaction,
    Work,
    Modifiers,
}

/// Keywords by upper-case spelling.
pub(super) const KEYWORDS: &[(&[u8], Kw)] = &[
    (b"ABORT", Kw::Abort),
    (b"ALTER", Kw::Alter),
    (b"ANALYSE", Kw::Analyze),
    (b"ANALYZE", Kw::Analyze),
    (b"AND", Kw::And),
    (b"AS", Kw::As),
    (b"BEGIN", Kw::Begin),
    (b"BETWEEN", Kw::Between),
    (b"COMMIT", Kw::Commit),
    (b"CONCURRENTLY", Kw::Concurrently),
    (b"CONFLICT", Kw::Conflict),
    (b"COPY", Kw::Copy),
    (b"CREATE", Kw::Create),
    (b"CROSS", Kw::Cross),
    (b"DEALLOCATE", Kw::Deallocate),
    (b"DELAYED", Kw::Modifiers),
    (b"DELETE", Kw::Delete),
    (b"DESC", Kw::Describe),
    (b"DESCRIBE", Kw::Describe),
    (b"DISCARD", Kw::Discard),
    (b"DISTINCT", Kw::Distinct),
    (b"DO", Kw::Do),
    (b"DROP", Kw::Drop),
    (b"DUPLICATE", Kw::Duplicate),
    (b"END", Kw::End),
    (b"EXCEPT", Kw::Except),
    (b"EXISTS", Kw::Exists),
    (b"EXPLAIN", Kw::Explain),
    (b"FETCH", Kw::Fetch),
    (b"FOR", Kw::For),
    (b"FROM", Kw::From),
    (b"FULL", Kw::Full),
    (b"GLOBAL", Kw::Temporary),
    (b"GROUP", Kw::Group),
    (b"HAVING", Kw::Having),
    (b"HIGH_PRIORITY", Kw::Modifiers),
    (b"IF", Kw::If),
    (b"IGNORE", Kw::Ignore),
    (b"INDEX", Kw::Index),
    (b"INNER", Kw::Inner),
    (b"INSERT", Kw::Insert),
    (b"INTERSECT", Kw::Intersect),
    (b"INTO", Kw::Into),
    (b"JOIN", Kw::Join),
    (b"KEY", Kw::Key),
    (b"LATERAL", Kw::Lateral),
    (b"LEFT", Kw::Left),
    (b"LIMIT", Kw::Limit),
    (b"LISTEN", Kw::Listen),
    (b"LOCAL", Kw::Temporary),
    (b"LOCK", Kw::Lock),
    (b"LOW_PRIORITY", Kw::Modifiers),
    (b"MATERIALIZED", Kw::Materialized),
    (b"MERGE", Kw::Merge),
    (b"MINUS", Kw::Except),
    (b"NATURAL", Kw::Natural),
    (b"NO", Kw::No),
    (b"NOT", Kw::Not),
    (b"OFFSET", Kw::Offset),
    (b"ON", Kw::On),
    (b"ONLY", Kw::Only),
    (b"OR", Kw::Or),
    (b"ORDER", Kw::Order),
    (b"OUTER", Kw::Outer),
    (b"PREPARE", Kw::Prepare),
    (b"QUICK", Kw::Modifiers),
    (b"RECURSIVE", Kw::Recursive),
    (b"REFERENCES", Kw::References),
    (b"RELEASE", Kw::Release),
    (b"RENAME", Kw::Rename),
    (b"REPLACE", Kw::Replace),
    (b"RESET", Kw::Reset),
    (b"RETURNING", Kw::Returning),
    (b"RIGHT", Kw::Right),
    (b"ROLLBACK", Kw::Rollback),
    (b"SAVEPOINT", Kw::Savepoint),
    (b"SELECT", Kw::Select),
    (b"SET", Kw::Set),
    (b"SHARE", Kw::Share),
    (b"SHOW", Kw::Show),
    (b"START", Kw::Start),
    (b"STRAIGHT", Kw::Straight),
    (b"STRAIGHT_JOIN", Kw::Join),
    (b"TABLE", Kw::Table),
    (b"TABLES", Kw::Table),
    (b"TEMP", Kw::Temporary),
    (b"TEMPORARY", Kw::Temporary),
    (b"THEN", Kw::Then),
    (b"TO", Kw::To),
    (b"TRANSACTION", Kw::Transaction),
    (b"TRUNCATE", Kw::Truncate),
    (b"UNION", Kw::Union),
    (b"UNIQUE", Kw::Unique),
    (b"UNLISTEN", Kw::Unlisten),
    (b"UNLOGGED", Kw::Temporary),
    (b"UPDATE", Kw::Update),
    (b"UPSERT", Kw::Replace),
    (b"USE", Kw::Use),
    (b"USING", Kw::Using),
    (b"VALUE", Kw::Values),
    (b"VALUES", Kw::Values),
    (b"VERBOSE", Kw::Verbose),
    (b"VIEW", Kw::View),
    (b"WHERE", Kw::Where),
    (b"WINDOW", Kw::Window),
    (b"WITH", Kw::With),
    (b"WORK", Kw::Work),
    (b"XOR", Kw::Or),
];

/// A word of at most 16 bytes packed into an integer (upper-cased by the
/// caller), so keyword lookup is a binary search over integers.
pub(super) const fn pack(w: &[u8]) -> u128 {
    let mut v: u128 = 0;
    let mut i = 0;
    while i < w.len() {
        v = (v << 8) | w[i] as u128;
        i += 1;
    }
    v
}

pub(super) const N_KEYWORDS: usize = KEYWORDS.len();
/// Slots of the keyword hash table (a power of two, under half full).
pub(super) const KW_SLOTS: usize = 256;

pub(super) const fn kw_slot(v: u128) -> usize {
    let x = (v as u64) ^ ((v >> 64) as u64);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % KW_SLOTS
}

/// [`KEYWORDS`] in an open-addressing table built at compile time; a slot
/// holding 0 is empty (no packed word is 0).
pub(super) const KW_TABLE: [(u128, Kw); KW_SLOTS] = {
    let mut t = [(0u128, Kw::None); KW_SLOTS];
    let mut i = 0;
    while i < N_KEYWORDS {
        let v = pack(KEYWORDS[i].0);
        let mut slot = kw_slot(v);
        while t[slot].0 != 0 {
            slot = (slot + 1) % KW_SLOTS;
        }
        t[slot] = (v, KEYWORDS[i].1);
        i += 1;
    }
    t
};

pub(super) fn kw_of(w: &[u8]) -> Kw {
    if w.len() > 16 || w.len() < 2 {
        return Kw::None;
    }
    let mut v: u128 = 0;
    for &c in w {
        if !(c.is_ascii_alphabetic() || c == b'_') {
            return Kw::None;
        }
        v = (v << 8) | c.to_ascii_uppercase() as u128;
    }
    let mut slot = kw_slot(v);
    loop {
        let (k, kw) = KW_TABLE[slot];
        if k == v {
            return kw;
        }
        if k == 0 {
            return Kw::None;
        }
        slot = (slot + 1) % KW_SLOTS;
    }
}

/// Words that end a table reference or cannot be a table name unquoted.
pub(super) fn is_clause_word(k: Kw) -> bool {
    !matches!(
        k,
        Kw::None | Kw::Key | Kw::No | Kw::Share | Kw::Work | Kw::Transaction
    )
}

#[cfg(test)]
mod tests {
    use super::{kw_of, Kw, KEYWORDS};

    #[test]
    pub(super) fn every_keyword_is_found_whatever_its_case() {
        for (word, kw) in KEYWORDS {
            assert_eq!(kw_of(word), *kw);
            assert_eq!(kw_of(&word.to_ascii_lowercase()), *kw);
        }
        assert_eq!(kw_of(b"accounts"), Kw::None);
        assert_eq!(kw_of(b"selects"), Kw::None);
    }
}
