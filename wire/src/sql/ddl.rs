//! DDL: the tables `CREATE`/`DROP`/`ALTER`/`TRUNCATE`/`LOCK`/`COPY` touch.

use super::*;

pub(super) fn scan_ddl(
    src: &[u8],
    d: Dialect,
    head: Kw,
    out: &mut Classification,
) -> StatementKind {
    let mut lx = Lexer::new(src, d);
    let _ = lx.next(); // head
    let mut names = Classification::new();
    let mut kind = AccessKind::Write;
    let ok = match head {
        Kw::Create => ddl_create(src, &mut lx, &mut names),
        Kw::Drop => {
            let t = lx.next();
            match t.map(|t| word_kw(src, &t)) {
                Some(Kw::Table) | Some(Kw::View) | Some(Kw::Temporary) => {
                    ddl_skip(
                        src,
                        &mut lx,
                        &[Kw::Temporary, Kw::Table, Kw::View, Kw::Materialized],
                    );
                    ddl_skip_if_exists(src, &mut lx);
                    ddl_name_list(src, &mut lx, &mut names)
                }
                Some(Kw::Materialized) => {
                    ddl_skip(src, &mut lx, &[Kw::View]);
                    ddl_skip_if_exists(src, &mut lx);
                    ddl_name_list(src, &mut lx, &mut names)
                }
                _ => false,
            }
        }
        Kw::Alter => match lx.next().map(|t| word_kw(src, &t)) {
            Some(Kw::Table) => {
                ddl_skip_if_exists(src, &mut lx);
                ddl_skip(src, &mut lx, &[Kw::Only]);
                let ok = ddl_name(src, &mut lx, &mut names);
                // ALTER TABLE t RENAME TO u: u is written too.
                while let Some(t) = lx.next() {
                    if matches!(word_kw(src, &t), Kw::To | Kw::References) {
                        let _ = ddl_name(src, &mut lx, &mut names);
                    }
                }
                ok
            }
            _ => false,
        },
        Kw::Truncate => {
            ddl_skip(src, &mut lx, &[Kw::Table, Kw::Only]);
            ddl_name_list(src, &mut lx, &mut names)
        }
        Kw::Lock => {
            // LOCK TABLE a, b IN ... MODE / MySQL LOCK TABLES a READ, b WRITE
            ddl_skip(src, &mut lx, &[Kw::Table, Kw::Only]);
            let mut ok = true;
            loop {
                ddl_skip(src, &mut lx, &[Kw::Only]);
                if !ddl_name(src, &mut lx, &mut names) {
                    ok = false;
                    break;
                }
                let mut more = false;
                while let Some(t) = lx.next() {
                    if t.t == T::Punct(b',') {
                        more = true;
                        break;
                    }
                }
                if !more {
                    break;
                }
            }
            ok
        }
        Kw::Copy => {
            // COPY t [(cols)] FROM ...: write; COPY t TO ...: read;
            // COPY (query) TO ...: the query's reads.
            let mut peek = lx;
            match peek.next() {
                Some(t) if t.t == T::Punct(b'(') => {
                    let inner_start = peek.pos;
                    if !skip_group(&mut peek) {
                        return unknown(out);
                    }
                    let inner = &src[inner_start..peek.pos - 1];
                    let mut q = Classification::new();
                    let k = scan_dml(inner, d, &RowPolicy::off(), &mut q, &mut 0);
                    for a in q.accesses() {
                        out.push(*a);
                    }
                    if let Some(f) = q.fallback() {
                        out.set_fallback(f);
                    }
                    return k;
                }
                _ => {
                    let ok = ddl_name(src, &mut lx, &mut names);
                    let mut dir = Kw::None;
                    while let Some(t) = lx.next() {
                        let k = word_kw(src, &t);
                        if matches!(k, Kw::From | Kw::To) {
                            dir = k;
                            break;
                        }
                    }
                    if dir == Kw::To {
                        kind = AccessKind::Read;
                    }
                    ok && dir != Kw::None
                }
            }
        }
        _ => false,
    };
    if !ok || lx.bad {
        return unknown(out);
    }
    for a in names.accesses() {
        let mut a = *a;
        if kind == AccessKind::Read {
            a.kind = kind;
        }
        out.push(a);
    }
    if let Some(f) = names.fallback() {
        out.set_fallback(f);
    }
    StatementKind::Ddl
}

pub(super) fn ddl_skip(src: &[u8], lx: &mut Lexer<'_>, words: &[Kw]) {
    loop {
        let save = *lx;
        match lx.next() {
            Some(t) if words.contains(&word_kw(src, &t)) => {}
            _ => {
                *lx = save;
                return;
            }
        }
    }
}

pub(super) fn ddl_skip_if_exists(src: &[u8], lx: &mut Lexer<'_>) {
    let save = *lx;
    if matches!(lx.next(), Some(t) if word_kw(src, &t) == Kw::If) {
        ddl_skip(src, lx, &[Kw::Not, Kw::Exists]);
    } else {
        *lx = save;
    }
}

pub(super) fn ddl_name(src: &[u8], lx: &mut Lexer<'_>, names: &mut Classification) -> bool {
    let Some(t) = lx.next() else { return false };
    if !(t.t == T::QIdent || t.t == T::Word) {
        return false;
    }
    let mut name = ident_text(src, t);
    loop {
        let save = *lx;
        match lx.next() {
            Some(p) if p.t == T::Punct(b'.') => match lx.next() {
                Some(n) if n.t == T::Word || n.t == T::QIdent => name = ident_text(src, n),
                _ => return false,
            },
            _ => {
                *lx = save;
                break;
            }
        }
    }
    names.push(TableAccess {
        table: name,
        row: None,
        kind: AccessKind::Write,
    });
    true
}

pub(super) fn ddl_name_list(src: &[u8], lx: &mut Lexer<'_>, names: &mut Classification) -> bool {
    loop {
        if !ddl_name(src, lx, names) {
            return false;
        }
        let save = *lx;
        match lx.next() {
            Some(t) if t.t == T::Punct(b',') => {}
            _ => {
                *lx = save;
                return true;
            }
        }
    }
}

pub(super) fn ddl_create(src: &[u8], lx: &mut Lexer<'_>, names: &mut Classification) -> bool {
    // CREATE [OR REPLACE] [TEMP|UNLOGGED|...] [UNIQUE] [MATERIALIZED] TABLE|VIEW|INDEX
    loop {
        let Some(t) = lx.next() else { return false };
        let k = word_kw(src, &t);
        match k {
            Kw::Or | Kw::Replace | Kw::Temporary | Kw::Unique | Kw::Materialized => continue,
            Kw::Table | Kw::View => {
                ddl_skip_if_exists(src, lx);
                if !ddl_name(src, lx, names) {
                    return false;
                }
                // Tables referenced by the definition (REFERENCES u, AS SELECT
                // ... FROM u) are read; the new table is written.
                let rest = &src[lx.pos..];
                let mut q = Classification::new();
                scan_refs(rest, lx.d, &mut q);
                for a in q.accesses() {
                    names.push(TableAccess {
                        kind: AccessKind::Read,
                        ..*a
                    });
                }
                if let Some(f) = q.fallback() {
                    names.set_fallback(f);
                }
                while lx.next().is_some() {}
                return true;
            }
            Kw::Index => {
                // CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] t
                while let Some(t) = lx.next() {
                    if word_kw(src, &t) == Kw::On {
                        ddl_skip(src, lx, &[Kw::Only]);
                        let ok = ddl_name(src, lx, names);
                        while lx.next().is_some() {}
                        return ok;
                    }
                }
                return false;
            }
            _ => return false,
        }
    }
}

/// Tables named after REFERENCES/FROM/JOIN in a DDL body, as reads.
pub(super) fn scan_refs(src: &[u8], d: Dialect, out: &mut Classification) {
    let mut lx = Lexer::new(src, d);
    while let Some(t) = lx.next() {
        if matches!(word_kw(src, &t), Kw::References | Kw::From | Kw::Join) {
            let mut names = Classification::new();
            let save = lx;
            if !ddl_name(src, &mut lx, &mut names) {
                lx = save;
            }
            for a in names.accesses() {
                out.push(*a);
            }
        }
    }
    if lx.bad {
        out.set_fallback(Fallback::Unrecognized);
    }
}
