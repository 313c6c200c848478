//! Names and values: canonical table and column names, and the canonical
//! form (digest and display text) of a row key's literal value.

use super::*;

/// Canonical table or column name: last dotted part, unquoted, ASCII
/// lowercased, cut to [`TABLE_CAP`] bytes.
pub fn canonical_name(name: &[u8]) -> InlineStr<TABLE_CAP> {
    let mut lx = Lexer::new(name, Dialect::Postgres);
    let mut last = InlineStr::new();
    while let Some(t) = lx.next() {
        match t.t {
            T::Word | T::QIdent => last = ident_text(name, t),
            _ => {}
        }
    }
    last
}

pub(super) fn ident_text(src: &[u8], t: Tok) -> InlineStr<TABLE_CAP> {
    let mut out = InlineStr::new();
    let raw = &src[t.s..t.e];
    if t.t == T::QIdent && raw.len() >= 2 {
        let q = raw[0];
        let inner = &raw[1..raw.len() - 1];
        let mut i = 0;
        while i < inner.len() {
            let c = inner[i];
            if c == q && inner.get(i + 1) == Some(&q) {
                i += 1;
            }
            out.push(c.to_ascii_lowercase());
            i += 1;
        }
    } else {
        for &c in raw {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

pub(super) fn trim_ascii(b: &[u8]) -> &[u8] {
    let mut s = 0;
    let mut e = b.len();
    while s < e && b[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && b[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    &b[s..e]
}

/// Canonical form of a row value, as its FNV-1a digest and a display
/// prefix. Different spellings of one value must meet: `5`, `'5'`, `'05'`,
/// `' +5 '`, `5.0` and a text-format parameter `5` are all `5`; text is
/// trimmed and ASCII-lowercased and a UUID keeps only its hex digits. Merging
/// distinct values only over-reports conflicts; splitting one value would
/// miss them, so anything whose spellings this cannot unify (exponents,
/// escapes, over-long numbers) returns `None` and the access stays
/// table-level. `raw` is the value's text with any quoting already removed.
pub fn canonical_value(raw: &[u8]) -> Option<(u64, InlineStr<VALUE_DISPLAY_CAP>)> {
    let t = trim_ascii(raw);
    let hex = t.iter().filter(|c| c.is_ascii_hexdigit()).count();
    let uuid_like = hex == 32
        && !t.iter().all(u8::is_ascii_digit)
        && t.iter()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, b'-' | b'{' | b'}'));
    let mut buf: InlineStr<64> = InlineStr::new();
    if uuid_like {
        // Fall through to the text path, which keeps only the hex digits.
    } else if let Some(ok) = canonical_number(t, &mut buf) {
        if !ok {
            return None;
        }
        return Some((
            fnv1a64(buf.as_bytes()),
            InlineStr::from_truncated(buf.as_bytes()),
        ));
    }
    let mut h = Fnv1a::new();
    let mut disp = InlineStr::new();
    for &c in t {
        if uuid_like && !c.is_ascii_hexdigit() {
            continue;
        }
        let c = c.to_ascii_lowercase();
        h.byte(c);
        disp.push(if (0x20..0x7f).contains(&c) { c } else { b'?' });
    }
    Some((h.finish(), disp))
}

/// `None`: not a number. `Some(false)`: number-like but not unifiable.
pub(super) fn canonical_number(t: &[u8], out: &mut InlineStr<64>) -> Option<bool> {
    let (neg, body) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() {
        return None;
    }
    let first = body[0];
    if !(first.is_ascii_digit() || (first == b'.' && body.len() > 1)) {
        return None;
    }
    let mut dot = None;
    for (i, &c) in body.iter().enumerate() {
        if c == b'.' && dot.is_none() {
            dot = Some(i);
        } else if !c.is_ascii_digit() {
            // 1e5, 0x1f, '12abc', '5 x', '2024-01-01': MySQL compares such
            // a string with an integer column by its numeric prefix, so it
            // may name row 12 or 5; no single key is safe.
            return Some(false);
        }
    }
    let (int, frac) = match dot {
        Some(d) => (&body[..d], &body[d + 1..]),
        None => (body, &body[..0]),
    };
    let int = {
        let z = int.iter().take_while(|c| **c == b'0').count();
        &int[z..]
    };
    let frac = {
        let mut e = frac.len();
        while e > 0 && frac[e - 1] == b'0' {
            e -= 1;
        }
        &frac[..e]
    };
    if int.len() + frac.len() + 2 > 64 {
        return Some(false);
    }
    let zero = int.is_empty() && frac.is_empty();
    if neg && !zero {
        out.push(b'-');
    }
    if int.is_empty() {
        out.push(b'0');
    } else {
        out.push_str(int);
    }
    if !frac.is_empty() {
        out.push(b'.');
        out.push_str(frac);
    }
    Some(true)
}

/// The value of a literal token, or the index of a placeholder.
pub(super) fn literal_value(src: &[u8], toks: &[Tok], d: Dialect) -> Option<RowValueLit> {
    match toks {
        [t] if t.t == T::Param => {
            let n = if d == Dialect::Postgres {
                parse_u16(&src[t.s + 1..t.e])?
            } else {
                0 // MySQL '?': numbered by the caller
            };
            Some(RowValueLit::Param(n, t.s))
        }
        [t] if t.t == T::Num => {
            let (dg, disp) = canonical_value(&src[t.s..t.e])?;
            Some(RowValueLit::Value(dg, disp))
        }
        [sign, t]
            if t.t == T::Num && sign.t == T::Op && matches!(&src[sign.s..sign.e], b"-" | b"+") =>
        {
            if sign.e != t.s {
                return None;
            }
            let (dg, disp) = canonical_value(&src[sign.s..t.e])?;
            Some(RowValueLit::Value(dg, disp))
        }
        [t] if t.t == T::Str => {
            let raw = &src[t.s..t.e];
            let inner = if raw.first() == Some(&b'$') {
                let close = raw[1..].iter().position(|c| *c == b'$')? + 1;
                let tag = &raw[..=close];
                if raw.len() < 2 * tag.len() {
                    return None;
                }
                &raw[tag.len()..raw.len() - tag.len()]
            } else {
                let q = raw[0];
                if !(q == b'\'' || q == b'"' || q == b'n' || q == b'N') {
                    return None; // E'', B'', X'': escapes or bit strings
                }
                let raw = if q == b'n' || q == b'N' {
                    &raw[1..]
                } else {
                    raw
                };
                if raw.len() < 2 {
                    return None;
                }
                let q = raw[0];
                let inner = &raw[1..raw.len() - 1];
                if inner.contains(&b'\\') || inner.contains(&q) {
                    return None;
                }
                inner
            };
            let (dg, disp) = canonical_value(inner)?;
            Some(RowValueLit::Value(dg, disp))
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
pub(super) enum RowValueLit {
    Value(u64, InlineStr<VALUE_DISPLAY_CAP>),
    /// PostgreSQL number, or 0 for a MySQL `?` at this byte offset.
    Param(u16, usize),
}

pub(super) fn parse_u16(b: &[u8]) -> Option<u16> {
    if b.is_empty() || b.len() > 5 {
        return None;
    }
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as u32;
    }
    u16::try_from(n).ok().filter(|n| *n > 0)
}
