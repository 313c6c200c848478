//! DML scan: the tables a `SELECT`/`INSERT`/`UPDATE`/`DELETE` (with CTEs,
//! subqueries and joins) reads and writes, and whether it locks rows.

use super::*;

pub(super) fn scan_dml(
    src: &[u8],
    d: Dialect,
    policy: &RowPolicy,
    out: &mut Classification,
    mysql_params: &mut u16,
) -> StatementKind {
    let mut sc = Scan {
        src,
        d,
        lx: Lexer::new(src, d),
        out,
        depth: 0,
        query: [false; MAX_DEPTH],
        ctes: [InlineStr::new(); MAX_CTES],
        n_ctes: 0,
        for_update: false,
        all_writes: false,
        head: Kw::None,
        sources0: 0,
        read0: None,
        target0: None,
        target0_end: 0,
        where0: 0,
        where0_pos: 0,
        set0_pos: None,
        seen_set0: false,
        from_list: [false; MAX_DEPTH],
        from_item: [false; MAX_DEPTH],
        call_paren: usize::MAX,
        unknown: false,
    };
    sc.query[0] = true;
    if contains_word_with(src) {
        sc.collect_ctes();
    }
    let mut saw_function_call = false;
    let mut prev: Option<Tok> = None;
    let mut prev_kw = Kw::None;
    let mut prev2_kw = Kw::None;
    let mut group_start = true;
    while let Some(t) = sc.lx.next() {
        let k = word_kw(src, &t);
        if group_start && sc.depth > 0 {
            let query_head = matches!(
                k,
                Kw::Select
                    | Kw::With
                    | Kw::Values
                    | Kw::Table
                    | Kw::Insert
                    | Kw::Update
                    | Kw::Delete
                    | Kw::Merge
            );
            sc.query[sc.depth] = query_head || t.t == T::Punct(b'(');
            if sc.from_item[sc.depth] && !query_head && (t.t == T::Word || t.t == T::QIdent) {
                // A parenthesised join, `FROM (a JOIN b ON ...)`: its first
                // table has no FROM of its own.
                sc.query[sc.depth] = true;
                sc.lx.pos = t.s;
                sc.read_list(AccessKind::Read, false);
                group_start = false;
                prev = None;
                prev_kw = Kw::None;
                continue;
            }
        }
        let at_group_start = group_start;
        group_start = false;
        match t.t {
            T::Punct(b'(') => {
                if let Some(p) = prev {
                    if p.t == T::Word && word_kw(src, &p) == Kw::None {
                        let name = &src[p.s..p.e];
                        if !is_pure_function(name) {
                            saw_function_call = true;
                        }
                        sc.side_effect_call(name);
                    }
                }
                let outer = sc.depth;
                let from_item = t.s != sc.call_paren && matches!(prev_kw, Kw::From | Kw::Join)
                    || prev.is_some_and(|p| {
                        (p.t == T::Punct(b',') && sc.from_list[outer])
                            || (p.t == T::Punct(b'(') && sc.from_item[outer])
                    });
                sc.depth += 1;
                if sc.depth >= MAX_DEPTH {
                    sc.unknown = true;
                    break;
                }
                sc.query[sc.depth] = false;
                sc.from_list[sc.depth] = false;
                sc.from_item[sc.depth] = from_item;
                group_start = true;
            }
            T::Punct(b')') => {
                if sc.depth == 0 {
                    sc.unknown = true;
                    break;
                }
                sc.depth -= 1;
            }
            T::Punct(b',') if sc.from_list[sc.depth] && sc.query[sc.depth] => {
                // `FROM (subquery) s, t`: the list goes on after the group.
                let kind = sc.source_kind();
                sc.read_list(kind, true);
            }
            _ => {}
        }
        if t.t == T::Word && k != Kw::None && k != Kw::As {
            sc.from_list[sc.depth] = false;
        }
        if t.t == T::Word && sc.query[sc.depth] {
            let head_pos = at_group_start || prev.map(|p| p.t == T::Punct(b')')).unwrap_or(false);
            if sc.depth == 0
                && sc.head == Kw::None
                && matches!(
                    k,
                    Kw::Select
                        | Kw::Values
                        | Kw::Table
                        | Kw::Insert
                        | Kw::Replace
                        | Kw::Update
                        | Kw::Delete
                        | Kw::Merge
                )
            {
                sc.head = k;
            }
            match k {
                Kw::From if prev_kw == Kw::Delete => sc.read_list(AccessKind::Write, false),
                Kw::From if prev_kw == Kw::Distinct => {}
                Kw::From => {
                    let kind = sc.source_kind();
                    sc.read_list(kind, true)
                }
                Kw::Join => {
                    let kind = sc.source_kind();
                    sc.read_one(kind, true);
                }
                Kw::Using => {
                    let save = sc.lx;
                    match sc.lx.next() {
                        Some(n) if n.t == T::Punct(b'(') => {
                            sc.lx = save;
                        }
                        _ => {
                            sc.lx = save;
                            sc.read_list(AccessKind::Read, true);
                        }
                    }
                }
                Kw::Into => sc.write_target(),
                Kw::Insert | Kw::Replace if head_pos => {
                    if k == Kw::Replace {
                        // REPLACE deletes whatever row any unique key hits.
                        sc.flag_no_insert_row();
                    }
                    sc.skip_modifiers();
                    if !sc.next_is(Kw::Into) {
                        sc.write_target();
                    }
                }
                Kw::Update
                    if head_pos
                        && !matches!(
                            prev_kw,
                            Kw::For | Kw::Do | Kw::Key | Kw::Then | Kw::No | Kw::On
                        ) =>
                {
                    sc.skip_modifiers();
                    sc.write_target();
                    // MySQL multi-table UPDATE t1, t2 SET ...
                    while sc.next_punct(b',') {
                        sc.all_writes = true;
                        sc.write_target();
                    }
                }
                Kw::Delete if head_pos && !matches!(prev_kw, Kw::Then | Kw::On) => {
                    sc.skip_modifiers();
                    if !sc.next_is(Kw::From) {
                        // MySQL multi-table DELETE t1, t2 FROM ...: every
                        // table may be written.
                        sc.all_writes = true;
                    }
                }
                Kw::Table if at_group_start => sc.read_one(AccessKind::Read, false),
                Kw::References => sc.read_one(AccessKind::Read, false),
                Kw::Update if prev_kw == Kw::For || (prev_kw == Kw::Key && prev2_kw == Kw::No) => {
                    sc.for_update = true;
                }
                Kw::Where if sc.depth == 0 => {
                    sc.where0 += 1;
                    sc.where0_pos = t.e;
                }
                Kw::Set if sc.depth == 0 && !sc.seen_set0 => {
                    sc.seen_set0 = true;
                    sc.set0_pos = Some(t.e);
                }
                _ => {}
            }
        }
        prev = Some(t);
        prev2_kw = prev_kw;
        prev_kw = k;
    }
    if sc.depth != 0 {
        sc.unknown = true;
    }
    sc.finish(policy, saw_function_call, mysql_params)
}

impl Scan<'_, '_> {
    /// Calls with effects on shared state that a plain read would hide:
    /// sequences become writes of the sequence (named by its literal),
    /// advisory locks writes of one per-server lock resource, and a few
    /// others fall back. User-defined functions are not looked into.
    pub(super) fn side_effect_call(&mut self, name: &[u8]) {
        let mut lower = [0u8; 32];
        if name.len() > lower.len() {
            return;
        }
        for (i, c) in name.iter().enumerate() {
            lower[i] = c.to_ascii_lowercase();
        }
        let name = &lower[..name.len()];
        if name == b"nextval" || name == b"setval" {
            let mut peek = self.lx;
            match peek.next() {
                Some(t) if t.t == T::Str && t.e - t.s >= 2 && self.src[t.s] == b'\'' => {
                    let seq = canonical_name(&self.src[t.s + 1..t.e - 1]);
                    self.out.push(TableAccess {
                        table: seq,
                        row: None,
                        kind: AccessKind::Write,
                    });
                }
                _ => self.unknown = true,
            }
        } else if name.starts_with(b"pg_advisory")
            || name.starts_with(b"pg_try_advisory")
            || matches!(
                name,
                b"get_lock"
                    | b"release_lock"
                    | b"release_all_locks"
                    | b"is_free_lock"
                    | b"is_used_lock"
            )
        {
            let mut table = InlineStr::new();
            table.push_str(b"<advisory locks>");
            self.out.push(TableAccess {
                table,
                row: None,
                kind: AccessKind::Write,
            });
        } else if name.starts_with(b"lo_")
            || name.starts_with(b"dblink")
            || matches!(
                name,
                b"pg_notify"
                    | b"txid_current_snapshot"
                    | b"pg_terminate_backend"
                    | b"pg_cancel_backend"
            )
        {
            self.unknown = true;
        }
    }

    /// MySQL `UPDATE t1 JOIN t2 SET ...` may write every table before SET.
    pub(super) fn source_kind(&mut self) -> AccessKind {
        if self.head == Kw::Update && !self.seen_set0 && self.depth == 0 {
            self.all_writes = true;
            AccessKind::Write
        } else {
            AccessKind::Read
        }
    }

    pub(super) fn next_is(&self, k: Kw) -> bool {
        let mut lx = self.lx;
        matches!(lx.next(), Some(t) if word_kw(self.src, &t) == k)
    }

    pub(super) fn next_punct(&mut self, p: u8) -> bool {
        let save = self.lx;
        match self.lx.next() {
            Some(t) if t.t == T::Punct(p) => true,
            _ => {
                self.lx = save;
                false
            }
        }
    }

    pub(super) fn skip_modifiers(&mut self) {
        loop {
            let save = self.lx;
            match self.lx.next() {
                Some(t)
                    if matches!(word_kw(self.src, &t), Kw::Modifiers | Kw::Ignore | Kw::Only) =>
                {
                    if word_kw(self.src, &t) == Kw::Ignore {
                        self.flag_no_insert_row();
                    }
                }
                _ => {
                    self.lx = save;
                    return;
                }
            }
        }
    }

    pub(super) fn flag_no_insert_row(&mut self) {
        self.target0_end = usize::MAX;
    }

    /// Finds `name AS (` and `name (cols) AS (` so CTE names are not taken
    /// for tables.
    pub(super) fn collect_ctes(&mut self) {
        let mut lx = Lexer::new(self.src, self.d);
        let mut toks: [Option<Tok>; 4] = [None; 4];
        let mut has_with = false;
        let mut paren_name: [Option<Tok>; MAX_DEPTH] = [None; MAX_DEPTH];
        let mut depth = 0usize;
        let mut last_closed_name: Option<Tok> = None;
        while let Some(t) = lx.next() {
            let k = word_kw(self.src, &t);
            if k == Kw::With {
                has_with = true;
            }
            match t.t {
                T::Punct(b'(') => {
                    if depth + 1 < MAX_DEPTH {
                        paren_name[depth + 1] =
                            toks[3].filter(|p| p.t == T::Word || p.t == T::QIdent);
                    }
                    depth += 1;
                }
                T::Punct(b')') => {
                    if depth > 0 && depth < MAX_DEPTH {
                        last_closed_name = paren_name[depth];
                    }
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            if has_with && t.t == T::Punct(b'(') {
                // name AS (   |   name AS [NOT] MATERIALIZED (
                let mut i = 3usize;
                while i > 0 {
                    if let Some(p) = toks[i] {
                        if matches!(word_kw(self.src, &p), Kw::Not | Kw::Materialized) {
                            i -= 1;
                            continue;
                        }
                    }
                    break;
                }
                if let Some(asw) = toks[i] {
                    if word_kw(self.src, &asw) == Kw::As && i > 0 {
                        let name = match toks[i - 1] {
                            Some(n) if n.t == T::Word || n.t == T::QIdent => Some(n),
                            Some(n) if n.t == T::Punct(b')') => last_closed_name,
                            _ => None,
                        };
                        if let Some(n) = name {
                            if self.n_ctes < MAX_CTES {
                                self.ctes[self.n_ctes] = ident_text(self.src, n);
                                self.n_ctes += 1;
                            }
                        }
                    }
                }
            }
            toks.rotate_left(1);
            toks[3] = Some(t);
        }
    }

    pub(super) fn is_cte(&self, name: &InlineStr<TABLE_CAP>) -> bool {
        self.ctes[..self.n_ctes].contains(name)
    }

    /// Reads `[ONLY|LATERAL] name[.name]* [*]`; `None` (cursor unmoved past
    /// the name) if what follows is not a table name. The second value says
    /// whether an item (table, function or subquery) was there at all.
    pub(super) fn table_name(
        &mut self,
        columns_may_follow: bool,
    ) -> (Option<InlineStr<TABLE_CAP>>, bool) {
        loop {
            let save = self.lx;
            let Some(t) = self.lx.next() else {
                return (None, false);
            };
            let k = word_kw(self.src, &t);
            if matches!(k, Kw::Only | Kw::Lateral) {
                continue;
            }
            if t.t == T::Punct(b'(') {
                self.lx = save;
                return (None, true);
            }
            if !(t.t == T::QIdent || (t.t == T::Word && !is_clause_word(k))) {
                self.lx = save;
                return (None, false);
            }
            let mut name = ident_text(self.src, t);
            loop {
                let save2 = self.lx;
                match self.lx.next() {
                    Some(p) if p.t == T::Punct(b'.') => {
                        let save3 = self.lx;
                        match self.lx.next() {
                            Some(n) if n.t == T::Word || n.t == T::QIdent => {
                                name = ident_text(self.src, n);
                            }
                            _ => {
                                self.lx = save3;
                                break;
                            }
                        }
                    }
                    _ => {
                        self.lx = save2;
                        break;
                    }
                }
            }
            // `name(` in FROM is a function call, not a table; after INTO
            // it opens the column list.
            let mut peek = self.lx;
            if let Some(p) = peek.next() {
                if p.t == T::Punct(b'(') && !columns_may_follow {
                    self.call_paren = p.s;
                    return (None, true);
                }
            }
            return (Some(name), true);
        }
    }

    pub(super) fn skip_alias(&mut self) {
        let save = self.lx;
        match self.lx.next() {
            Some(t) if word_kw(self.src, &t) == Kw::As => {
                let save2 = self.lx;
                match self.lx.next() {
                    Some(n) if n.t == T::Word || n.t == T::QIdent => {}
                    _ => self.lx = save2,
                }
            }
            Some(t)
                if t.t == T::QIdent || (t.t == T::Word && word_kw(self.src, &t) == Kw::None) => {}
            _ => {
                self.lx = save;
                return;
            }
        }
        // Column aliases: alias(a, b).
        let save = self.lx;
        match self.lx.next() {
            Some(t) if t.t == T::Punct(b'(') => {
                if !skip_group(&mut self.lx) {
                    self.unknown = true;
                }
            }
            _ => self.lx = save,
        }
    }

    pub(super) fn add(&mut self, name: InlineStr<TABLE_CAP>, kind: AccessKind, is_source: bool) {
        if kind == AccessKind::Read && self.is_cte(&name) {
            if self.depth == 0 && is_source {
                self.sources0 += 1;
            }
            return;
        }
        if self.depth == 0 && is_source && kind == AccessKind::Read {
            self.sources0 += 1;
            if self.sources0 == 1 {
                self.read0 = Some(name);
                return;
            }
        }
        self.out.push(TableAccess {
            table: name,
            row: None,
            kind,
        });
    }

    pub(super) fn read_one(&mut self, kind: AccessKind, is_source: bool) {
        let (name, present) = self.table_name(false);
        match name {
            Some(n) => {
                self.add(n, kind, is_source);
                self.skip_alias();
            }
            None => {
                if !present {
                    self.unknown = true;
                } else {
                    self.from_list[self.depth] = true;
                    if self.depth == 0 && is_source {
                        self.sources0 += 1;
                    }
                }
            }
        }
    }

    pub(super) fn read_list(&mut self, kind: AccessKind, is_source: bool) {
        loop {
            if kind == AccessKind::Write && !is_source {
                self.write_target();
            } else {
                self.read_one(kind, is_source);
            }
            let save = self.lx;
            match self.lx.next() {
                Some(t) if t.t == T::Punct(b',') => continue,
                _ => {
                    self.lx = save;
                    return;
                }
            }
        }
    }

    pub(super) fn write_target(&mut self) {
        let (name, present) = self.table_name(true);
        match name {
            Some(n) => {
                if self.depth == 0 && self.target0.is_none() {
                    self.target0 = Some(n);
                    if self.target0_end != usize::MAX {
                        self.target0_end = self.lx.pos;
                    }
                } else {
                    self.out.push(TableAccess {
                        table: n,
                        row: None,
                        kind: AccessKind::Write,
                    });
                }
                self.skip_alias();
            }
            None => {
                // MySQL `SELECT ... INTO @var` / `INTO OUTFILE 'f'` name no
                // table; anything else unreadable may hide the written one.
                let mut peek = self.lx;
                let harmless = !present
                    && match peek.next() {
                        Some(t) if t.t == T::Op => self.src[t.s] == b'@',
                        Some(t) if t.t == T::Word => {
                            let w = &self.src[t.s..t.e];
                            w.eq_ignore_ascii_case(b"outfile")
                                || w.eq_ignore_ascii_case(b"dumpfile")
                        }
                        _ => false,
                    };
                if !harmless {
                    self.unknown = true;
                }
            }
        }
    }

    pub(super) fn finish(
        self,
        policy: &RowPolicy,
        saw_function_call: bool,
        mysql_params: &mut u16,
    ) -> StatementKind {
        if self.unknown || self.lx.bad {
            self.out.set_fallback(Fallback::Unrecognized);
        }
        let mut row: Option<RowKey> = None;
        let mysql_base = *mysql_params;
        if !self.unknown && !self.all_writes {
            match self.head {
                Kw::Select if self.sources0 == 1 && self.target0.is_none() && self.where0 == 1 => {
                    if let Some(t) = self.read0 {
                        row = where_row(
                            self.src,
                            self.d,
                            self.where0_pos,
                            t.as_bytes(),
                            policy,
                            mysql_base,
                        );
                    }
                }
                Kw::Update | Kw::Delete if self.sources0 == 0 && self.where0 == 1 => {
                    if let Some(t) = self.target0 {
                        let set_ok = match self.set0_pos {
                            Some(p) => !set_mentions_key(self.src, self.d, p, t.as_bytes(), policy),
                            None => self.head == Kw::Delete,
                        };
                        if set_ok {
                            row = where_row(
                                self.src,
                                self.d,
                                self.where0_pos,
                                t.as_bytes(),
                                policy,
                                mysql_base,
                            );
                        }
                    }
                }
                Kw::Insert if self.target0_end != usize::MAX && self.target0_end != 0 => {
                    if let Some(t) = self.target0 {
                        row = insert_row(
                            self.src,
                            self.d,
                            self.target0_end,
                            t.as_bytes(),
                            policy,
                            mysql_base,
                        );
                    }
                }
                _ => {}
            }
        }
        // Number MySQL placeholders across statements.
        if self.d == Dialect::Mysql {
            let mut lx = Lexer::new(self.src, self.d);
            while let Some(t) = lx.next() {
                if t.t == T::Param {
                    *mysql_params = mysql_params.saturating_add(1);
                }
            }
        }
        if let Some(t) = self.target0 {
            let r = if self.head == Kw::Select { None } else { row };
            self.out.push(TableAccess {
                table: t,
                row: r,
                kind: AccessKind::Write,
            });
        }
        if let Some(t) = self.read0 {
            let r = if self.head == Kw::Select { row } else { None };
            self.out.push(TableAccess {
                table: t,
                row: r,
                kind: AccessKind::Read,
            });
        }
        if self.for_update || self.all_writes {
            for a in self.out.accesses_mut() {
                a.kind = AccessKind::Write;
            }
        }
        let kind = if self.out.fallback().is_some() {
            StatementKind::Unknown
        } else if self.out.accesses().is_empty() {
            if saw_function_call || self.head != Kw::Select && self.head != Kw::Values {
                self.out.set_fallback(Fallback::Unrecognized);
                StatementKind::Unknown
            } else {
                StatementKind::NoConflict
            }
        } else {
            StatementKind::Data
        };
        kind
    }
}
