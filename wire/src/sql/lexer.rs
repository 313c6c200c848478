//! Lexer: tokens of one SQL string, with both dialects' quoting, comments
//! and dollar quotes, so keywords or `;` inside literals never mislead the
//! layers above.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum T {
    Word,
    QIdent,
    Str,
    Num,
    Param,
    Punct(u8),
    Op,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Tok {
    pub(super) t: T,
    pub(super) s: usize,
    pub(super) e: usize,
}

#[derive(Clone, Copy)]
pub(super) struct Lexer<'a> {
    pub(super) src: &'a [u8],
    pub(super) pos: usize,
    pub(super) d: Dialect,
    /// Unterminated literal/comment, executable comment, or other text this
    /// classifier should not trust.
    pub(super) bad: bool,
}

pub(super) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

pub(super) fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a [u8], d: Dialect) -> Self {
        Lexer {
            src,
            pos: 0,
            d,
            bad: false,
        }
    }

    pub(super) fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    pub(super) fn skip_trivia(&mut self) {
        loop {
            let b = self.at(self.pos);
            if self.pos >= self.src.len() {
                return;
            }
            if b.is_ascii_whitespace() || b == 0x0b {
                self.pos += 1;
            } else if b == b'-' && self.at(self.pos + 1) == b'-' {
                if self.d == Dialect::Mysql {
                    let c = self.at(self.pos + 2);
                    if !(self.pos + 2 >= self.src.len() || c.is_ascii_whitespace() || c < 0x20) {
                        return;
                    }
                }
                self.skip_line();
            } else if b == b'#' && self.d == Dialect::Mysql {
                self.skip_line();
            } else if b == b'/' && self.at(self.pos + 1) == b'*' {
                if self.d == Dialect::Mysql
                    && (self.at(self.pos + 2) == b'!'
                        || (self.at(self.pos + 2) == b'M' && self.at(self.pos + 3) == b'!'))
                {
                    // Executable comment: MySQL runs its contents.
                    self.bad = true;
                }
                self.skip_block_comment();
            } else {
                return;
            }
        }
    }

    pub(super) fn skip_line(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    pub(super) fn skip_block_comment(&mut self) {
        let nested = self.d == Dialect::Postgres;
        let mut depth = 0usize;
        while self.pos < self.src.len() {
            if self.at(self.pos) == b'/' && self.at(self.pos + 1) == b'*' {
                if depth == 0 || nested {
                    depth += 1;
                }
                self.pos += 2;
            } else if self.at(self.pos) == b'*' && self.at(self.pos + 1) == b'/' {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return;
                }
            } else {
                self.pos += 1;
            }
        }
        self.bad = true;
    }

    /// Skips a quoted run starting at `self.pos` (the opening quote).
    pub(super) fn skip_quoted(&mut self, q: u8, backslash: bool) {
        self.pos += 1;
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if backslash && b == b'\\' {
                self.pos += 2;
                continue;
            }
            if b == q {
                if self.at(self.pos + 1) == q && self.pos + 1 < self.src.len() {
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                return;
            }
            self.pos += 1;
        }
        self.pos = self.src.len();
        self.bad = true;
    }

    /// `$tag$ ... $tag$` at `self.pos`; false if this `$` does not open one.
    pub(super) fn try_dollar_string(&mut self) -> bool {
        let start = self.pos;
        let mut i = start + 1;
        while i < self.src.len() && (self.src[i].is_ascii_alphanumeric() || self.src[i] == b'_') {
            i += 1;
        }
        if self.at(i) != b'$' || i >= self.src.len() {
            return false;
        }
        if i > start + 1 && self.src[start + 1].is_ascii_digit() {
            return false;
        }
        let tag = &self.src[start..=i];
        let mut j = i + 1;
        while j + tag.len() <= self.src.len() {
            if &self.src[j..j + tag.len()] == tag {
                self.pos = j + tag.len();
                return true;
            }
            j += 1;
        }
        self.pos = self.src.len();
        self.bad = true;
        true
    }

    pub(super) fn next(&mut self) -> Option<Tok> {
        self.skip_trivia();
        let s = self.pos;
        if s >= self.src.len() {
            return None;
        }
        let b = self.src[s];
        let t = match b {
            b'\'' => {
                self.skip_quoted(b'\'', self.d == Dialect::Mysql);
                T::Str
            }
            b'"' if self.d == Dialect::Mysql => {
                self.skip_quoted(b'"', true);
                T::Str
            }
            b'"' => {
                self.skip_quoted(b'"', false);
                T::QIdent
            }
            b'`' => {
                self.skip_quoted(b'`', false);
                T::QIdent
            }
            b'$' if self.d == Dialect::Postgres && self.at(s + 1).is_ascii_digit() => {
                self.pos += 1;
                while self.at(self.pos).is_ascii_digit() && self.pos < self.src.len() {
                    self.pos += 1;
                }
                T::Param
            }
            b'$' if self.d == Dialect::Postgres && self.try_dollar_string() => T::Str,
            b'?' if self.d == Dialect::Mysql => {
                self.pos += 1;
                T::Param
            }
            b'0'..=b'9' => {
                self.lex_number(s);
                T::Num
            }
            b'.' if self.at(s + 1).is_ascii_digit()
                && !(s > 0 && (is_ident_char(self.src[s - 1]) || self.src[s - 1] == b'"')) =>
            {
                self.lex_number(s);
                T::Num
            }
            b'(' | b')' | b',' | b';' | b'.' | b'[' | b']' => {
                self.pos += 1;
                T::Punct(b)
            }
            _ if is_ident_start(b) => {
                let q = self.at(s + 1);
                if matches!(b, b'e' | b'E' | b'n' | b'N' | b'b' | b'B' | b'x' | b'X') && q == b'\''
                {
                    self.pos += 1;
                    let bs = matches!(b, b'e' | b'E') || self.d == Dialect::Mysql;
                    self.skip_quoted(b'\'', bs);
                    T::Str
                } else {
                    while self.pos < self.src.len() && is_ident_char(self.src[self.pos]) {
                        self.pos += 1;
                    }
                    T::Word
                }
            }
            _ => self.lex_operator(),
        };
        if self.pos == s {
            // Never stall on a byte no rule consumed.
            self.pos += 1;
        }
        Some(Tok { t, s, e: self.pos })
    }

    pub(super) fn lex_number(&mut self, s: usize) {
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            let exponent_sign = self.pos > s
                && (c == b'+' || c == b'-')
                && matches!(self.src[self.pos - 1], b'e' | b'E')
                && self.src[s..self.pos - 1]
                    .iter()
                    .all(|x| x.is_ascii_digit() || *x == b'.');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    pub(super) fn lex_operator(&mut self) -> T {
        const OPS: &[u8] = b"+-*/<>=~!@#%^&|`?:";
        let s = self.pos;
        let mut i = s;
        while i < self.src.len() && OPS.contains(&self.src[i]) {
            if self.d == Dialect::Mysql && (self.src[i] == b'#' || self.src[i] == b'?') {
                break;
            }
            if i > s
                && ((self.src[i] == b'-' && self.src[i - 1] == b'-')
                    || (self.src[i] == b'*' && self.src[i - 1] == b'/'))
            {
                i -= 1;
                break;
            }
            i += 1;
        }
        if i == s {
            // A byte outside every class: skip it as an operator.
            self.pos = s + 1;
            return T::Op;
        }
        // PostgreSQL: a multi-character operator cannot end in + or -
        // unless it holds one of ~!@#%^&|`?  (so `=-5` is `=` then `-5`).
        let special = self.src[s..i].iter().any(|c| b"~!@#%^&|`?".contains(c));
        while i - s > 1 && matches!(self.src[i - 1], b'+' | b'-') && !special {
            i -= 1;
        }
        self.pos = i;
        if i - s == 1 && self.src[s] == b'=' {
            T::Punct(b'=')
        } else {
            T::Op
        }
    }
}
