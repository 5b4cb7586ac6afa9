//! Just enough of Rust's lexer to find paths: comments, strings, chars and lifetimes are
//! skipped so that a `crate::x` inside them is never read as a use.

/// One token of interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword (`$crate` included; `r#x` as `x`).
    Ident(String),
    /// `::`
    PathSep,
    /// A string literal's raw text (kept for `#[path = "..."]`).
    Str(String),
    /// Any other literal (numbers, chars, byte strings).
    Literal,
    /// Any other single punctuation character.
    Punct(char),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// 1-based line where the token starts.
    pub line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Moves one char forward, counting lines.
    fn bump(&mut self) {
        if self.peek(0) == Some('\n') {
            self.line += 1;
        }
        self.at += 1;
    }

    fn push(&mut self, tok: Tok, line: usize) {
        self.out.push(Token { tok, line });
    }

    fn line_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    /// Block comments nest in Rust.
    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            if c == '/' && self.peek(1) == Some('*') {
                depth += 1;
                self.bump();
            } else if c == '*' && self.peek(1) == Some('/') {
                depth -= 1;
                self.bump();
                if depth == 0 {
                    self.bump();
                    return;
                }
            }
            self.bump();
        }
    }

    /// A quoted string starting at the opening `"`; returns its raw text.
    fn quoted(&mut self) -> String {
        self.bump();
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            if c == '\\' {
                self.bump();
                self.bump();
                continue;
            }
            self.bump();
            if c == '"' {
                break;
            }
            text.push(c);
        }
        text
    }

    /// A raw string starting at its first `#` or `"` (after the `r`).
    fn raw_string(&mut self) {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            hashes += 1;
            self.bump();
        }
        self.bump(); // the opening quote
        while let Some(c) = self.peek(0) {
            self.bump();
            if c == '"' && (0..hashes).all(|k| self.peek(k) == Some('#')) {
                for _ in 0..hashes {
                    self.bump();
                }
                return;
            }
        }
    }

    /// `'x'`, `'\n'`, `'\u{..}'` are chars; `'a` is a lifetime (skipped too).
    fn quote(&mut self) {
        self.bump();
        let escaped = self.peek(0) == Some('\\');
        if escaped || self.peek(1) == Some('\'') {
            if escaped {
                self.bump();
            }
            self.bump();
            while self.peek(0).is_some_and(|c| c != '\'') {
                self.bump();
            }
            self.bump();
        } else {
            while self.peek(0).is_some_and(is_ident_char) {
                self.bump();
            }
        }
    }

    fn ident(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek(0).filter(|c| is_ident_char(*c)) {
            name.push(c);
            self.bump();
        }
        name
    }

    /// A string-like literal with a one- or two-letter prefix (`b"`, `br#"`, `c"`, `b'`), if
    /// one starts here.
    fn prefixed_literal(&mut self) -> bool {
        let (c0, c1, c2) = (self.peek(0), self.peek(1), self.peek(2));
        let raw_after = |k: usize| {
            matches!(
                (self.peek(k), self.peek(k + 1)),
                (Some('"'), _) | (Some('#'), Some('"' | '#'))
            )
        };
        match (c0, c1, c2) {
            (Some('r'), _, _) if raw_after(1) => {
                self.bump();
                self.raw_string();
            }
            (Some('b' | 'c'), Some('r'), _) if raw_after(2) => {
                self.bump();
                self.bump();
                self.raw_string();
            }
            (Some('b' | 'c'), Some('"'), _) => {
                self.bump();
                self.quoted();
            }
            (Some('b'), Some('\''), _) => {
                self.bump();
                self.quote();
            }
            _ => return false,
        }
        true
    }

    fn run(mut self) -> Vec<Token> {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                _ if c.is_whitespace() => self.bump(),
                '/' if self.peek(1) == Some('/') => self.line_comment(),
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '"' => {
                    let text = self.quoted();
                    self.push(Tok::Str(text), line);
                }
                '\'' => {
                    self.quote();
                    self.push(Tok::Literal, line);
                }
                'r' if self.peek(1) == Some('#') && self.peek(2).is_some_and(is_ident_start) => {
                    self.bump();
                    self.bump();
                    let name = self.ident();
                    self.push(Tok::Ident(name), line);
                }
                _ if is_ident_start(c) => {
                    if self.prefixed_literal() {
                        self.push(Tok::Literal, line);
                    } else {
                        let name = self.ident();
                        self.push(Tok::Ident(name), line);
                    }
                }
                _ if c.is_ascii_digit() => {
                    while self.peek(0).is_some_and(is_ident_char)
                        || (self.peek(0) == Some('.')
                            && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
                    {
                        self.bump();
                    }
                    self.push(Tok::Literal, line);
                }
                ':' if self.peek(1) == Some(':') => {
                    self.bump();
                    self.bump();
                    self.push(Tok::PathSep, line);
                }
                '$' if self.peek(1).is_some_and(is_ident_start) => {
                    self.bump();
                    let name = format!("${}", self.ident());
                    self.push(Tok::Ident(name), line);
                }
                _ => {
                    self.bump();
                    self.push(Tok::Punct(c), line);
                }
            }
        }
        self.out
    }
}

/// The tokens of one source file.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    Lexer {
        chars: src.chars().collect(),
        at: 0,
        line: 1,
        out: Vec::new(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokenize(src)
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Ident(name) => Some(name),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_and_chars_hide_their_contents() {
        let src = r##"a // crate b
/* c /* nested d */ e */ f "g \" h" r#"i "j" k"# b"l" '"' 'm' '\'' n<'o> p
"##;
        assert_eq!(idents(src), ["a", "f", "n", "p"]);
    }

    #[test]
    fn lines_count_inside_comments_and_strings() {
        let tokens = tokenize("/*\n*/ \"\n\" x");
        assert_eq!(tokens.last().unwrap().line, 3);
    }

    #[test]
    fn raw_identifiers_and_macro_crate_are_identifiers() {
        assert_eq!(idents("r#type $crate"), ["type", "$crate"]);
    }
}
