//! Rows: the single row a statement names, from a top-level `WHERE key =
//! value` conjunct or a single-row `INSERT ... VALUES`.

use super::*;

/// The key column named by `col`, `q.col` or `s.q.col`, if `col` is the
/// table's key column. A single-source statement leaves the qualifier no
/// other table to name, so it is not checked.
pub(super) fn key_column_of(
    src: &[u8],
    toks: &[Tok],
    table: &[u8],
    policy: &RowPolicy,
) -> Option<InlineStr<TABLE_CAP>> {
    let name = match toks {
        [c] if c.t == T::Word || c.t == T::QIdent => *c,
        [_q, dot, c] if dot.t == T::Punct(b'.') && (c.t == T::Word || c.t == T::QIdent) => *c,
        [_s, d1, _q, d2, c]
            if d1.t == T::Punct(b'.')
                && d2.t == T::Punct(b'.')
                && (c.t == T::Word || c.t == T::QIdent) =>
        {
            *c
        }
        _ => return None,
    };
    if name.t == T::Word && kw_of(&src[name.s..name.e]) != Kw::None {
        return None;
    }
    let col = ident_text(src, name);
    if policy.is_key_column(table, col.as_bytes()) {
        Some(col)
    } else {
        None
    }
}

/// Where a trailing `::type` or `::type(n)` cast starts in value tokens
/// (their length without one), or `usize::MAX` for any other `::` shape.
pub(super) fn strip_cast(src: &[u8], toks: &[Tok]) -> usize {
    for (i, t) in toks.iter().enumerate() {
        if t.t == T::Op && &src[t.s..t.e] == b"::" {
            let rest = &toks[i + 1..];
            let ok = match rest {
                [w] => w.t == T::Word,
                [w, o, n, c] => {
                    w.t == T::Word
                        && o.t == T::Punct(b'(')
                        && n.t == T::Num
                        && c.t == T::Punct(b')')
                }
                _ => false,
            };
            return if ok { i } else { usize::MAX };
        }
    }
    toks.len()
}

pub(super) fn make_row(
    src: &[u8],
    d: Dialect,
    col: InlineStr<TABLE_CAP>,
    val: &[Tok],
    mysql_base: u16,
) -> Option<RowKey> {
    let n = strip_cast(src, val);
    if n == usize::MAX {
        return None;
    }
    let lit = literal_value(src, &val[..n], d)?;
    let column = InlineStr::<COLUMN_CAP>::from_truncated(col.as_bytes());
    match lit {
        RowValueLit::Value(dg, disp) => Some(RowKey {
            column,
            value: RowValue::Digest(dg),
            display: disp,
        }),
        RowValueLit::Param(n, at) => {
            let n = if d == Dialect::Mysql {
                // 1-based position of this `?` in the whole string.
                let mut lx = Lexer::new(src, d);
                let mut k = mysql_base;
                while let Some(t) = lx.next() {
                    if t.t == T::Param {
                        k = k.saturating_add(1);
                        if t.s == at {
                            break;
                        }
                    }
                }
                k
            } else {
                n
            };
            let mut display = InlineStr::new();
            display.push(if d == Dialect::Mysql { b'?' } else { b'$' });
            let mut buf = [0u8; 5];
            let mut i = buf.len();
            let mut m = n;
            loop {
                i -= 1;
                buf[i] = b'0' + (m % 10) as u8;
                m /= 10;
                if m == 0 {
                    break;
                }
            }
            display.push_str(&buf[i..]);
            Some(RowKey {
                column,
                value: RowValue::Param(n),
                display,
            })
        }
    }
}

pub(super) const MAX_COND_TOKS: usize = 12;

/// Looks for `key = value` among the top-level conjuncts of a WHERE clause
/// starting at byte `pos`.
pub(super) fn where_row(
    src: &[u8],
    d: Dialect,
    pos: usize,
    table: &[u8],
    policy: &RowPolicy,
    mysql_base: u16,
) -> Option<RowKey> {
    let mut lx = Lexer::new(src, d);
    lx.pos = pos;
    let mut depth = 0usize;
    let mut cond = [Tok {
        t: T::Op,
        s: 0,
        e: 0,
    }; MAX_COND_TOKS];
    let mut n = 0usize;
    let mut overflow = false;
    let mut between = false;
    let mut found: Option<RowKey> = None;
    loop {
        let t = lx.next();
        let k = t.map(|t| word_kw(src, &t)).unwrap_or(Kw::None);
        let end_of_conjunct = match t {
            None => true,
            Some(t) if depth == 0 => match k {
                Kw::And if between => {
                    between = false;
                    false
                }
                Kw::And => true,
                Kw::Or => return None,
                Kw::Group
                | Kw::Order
                | Kw::Limit
                | Kw::Offset
                | Kw::Returning
                | Kw::For
                | Kw::Having
                | Kw::Window
                | Kw::Union
                | Kw::Intersect
                | Kw::Except
                | Kw::Fetch
                | Kw::Lock => true,
                _ => t.t == T::Punct(b')'),
            },
            _ => false,
        };
        if end_of_conjunct {
            if found.is_none() && !overflow {
                found = conjunct_row(src, d, &cond[..n], table, policy, mysql_base);
            }
            n = 0;
            overflow = false;
            if k != Kw::And {
                return found;
            }
            continue;
        }
        let t = t?;
        if k == Kw::Between && depth == 0 {
            between = true;
        }
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if n < MAX_COND_TOKS {
            cond[n] = t;
            n += 1;
        } else {
            overflow = true;
        }
    }
}

pub(super) fn conjunct_row(
    src: &[u8],
    d: Dialect,
    cond: &[Tok],
    table: &[u8],
    policy: &RowPolicy,
    mysql_base: u16,
) -> Option<RowKey> {
    let eq = cond.iter().position(|t| t.t == T::Punct(b'='))?;
    let (l, r) = (&cond[..eq], &cond[eq + 1..]);
    if let Some(col) = key_column_of(src, l, table, policy) {
        if let Some(row) = make_row(src, d, col, r, mysql_base) {
            return Some(row);
        }
    }
    if let Some(col) = key_column_of(src, r, table, policy) {
        return make_row(src, d, col, l, mysql_base);
    }
    None
}

/// Whether the SET clause starting at `pos` mentions the key column (then
/// the row may move and the update stays table-level).
pub(super) fn set_mentions_key(
    src: &[u8],
    d: Dialect,
    pos: usize,
    table: &[u8],
    policy: &RowPolicy,
) -> bool {
    let mut lx = Lexer::new(src, d);
    lx.pos = pos;
    let mut depth = 0usize;
    while let Some(t) = lx.next() {
        let k = word_kw(src, &t);
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && matches!(k, Kw::Where | Kw::From | Kw::Returning) {
            return false;
        }
        if (t.t == T::Word && k == Kw::None) || t.t == T::QIdent {
            let c = ident_text(src, t);
            if policy.is_key_column(table, c.as_bytes()) {
                return true;
            }
        }
    }
    false
}

/// `INSERT INTO t (cols) VALUES (vals)` with a single tuple: the row named
/// by the key column. `ON CONFLICT (key)` is allowed; any other conflict
/// clause may touch another row, so it stays table-level.
pub(super) fn insert_row(
    src: &[u8],
    d: Dialect,
    pos: usize,
    table: &[u8],
    policy: &RowPolicy,
    mysql_base: u16,
) -> Option<RowKey> {
    let mut lx = Lexer::new(src, d);
    lx.pos = pos;
    let mut t = lx.next()?;
    // Optional alias: INSERT INTO t AS x (...)
    if word_kw(src, &t) == Kw::As {
        lx.next()?;
        t = lx.next()?;
    }
    if t.t != T::Punct(b'(') {
        return None;
    }
    // Column list.
    let mut key_index = None;
    let mut key_col = InlineStr::new();
    let mut i = 0usize;
    loop {
        let c = lx.next()?;
        if !(c.t == T::Word || c.t == T::QIdent) {
            return None;
        }
        let name = ident_text(src, c);
        if policy.is_key_column(table, name.as_bytes()) {
            if key_index.is_some() {
                return None;
            }
            key_index = Some(i);
            key_col = name;
        }
        let sep = lx.next()?;
        match sep.t {
            T::Punct(b',') => i += 1,
            T::Punct(b')') => break,
            _ => return None,
        }
    }
    let key_index = key_index?;
    let v = lx.next()?;
    if word_kw(src, &v) != Kw::Values {
        return None;
    }
    if lx.next()?.t != T::Punct(b'(') {
        return None;
    }
    let mut elem = [Tok {
        t: T::Op,
        s: 0,
        e: 0,
    }; MAX_COND_TOKS];
    let mut n = 0usize;
    let mut idx = 0usize;
    let mut depth = 0usize;
    let mut value: Option<RowKey> = None;
    loop {
        let t = lx.next()?;
        let top = depth == 0;
        match t.t {
            T::Punct(b'(') => depth += 1,
            T::Punct(b')') if depth > 0 => depth -= 1,
            _ => {}
        }
        if top && (t.t == T::Punct(b',') || t.t == T::Punct(b')')) {
            if idx == key_index {
                if n > MAX_COND_TOKS {
                    return None;
                }
                value = make_row(src, d, key_col, &elem[..n], mysql_base);
                value?;
            }
            if t.t == T::Punct(b')') {
                break;
            }
            idx += 1;
            n = 0;
            continue;
        }
        if n < MAX_COND_TOKS {
            elem[n] = t;
        }
        n += 1;
    }
    // What may follow the tuple: nothing, RETURNING, or ON CONFLICT (key).
    match lx.next() {
        None => value,
        Some(t) => match word_kw(src, &t) {
            Kw::Returning => value,
            Kw::On => {
                if word_kw(src, &lx.next()?) != Kw::Conflict {
                    return None; // ON DUPLICATE KEY UPDATE: any unique key
                }
                if lx.next()?.t != T::Punct(b'(') {
                    return None;
                }
                let c = lx.next()?;
                if ident_text(src, c).as_bytes() != key_col.as_bytes() {
                    return None;
                }
                if lx.next()?.t != T::Punct(b')') {
                    return None;
                }
                // DO UPDATE SET id = ... would move the row.
                if set_mentions_key(src, d, lx.pos, table, policy) {
                    return None;
                }
                value
            }
            _ => None,
        },
    }
}
