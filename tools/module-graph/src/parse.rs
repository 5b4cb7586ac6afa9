//! The facts of one source file the graph needs: module declarations, `use` trees, other
//! `crate::`/`super::`/`self::` paths, and the names of items defined at module level.
//! Items under `#[cfg(test)]` are skipped (test modules are not part of the graph).

use crate::lex::{tokenize, Tok, Token};

/// Module path of inline `mod x { .. }` blocks around a fact, inside its file.
pub(crate) type Scope = Vec<String>;

/// `mod name;` or `mod name { .. }`.
#[derive(Debug)]
pub(crate) struct ModDecl {
    pub scope: Scope,
    pub name: String,
    pub inline: bool,
    /// The value of a `#[path = ".."]` attribute.
    pub path: Option<String>,
}

/// One path written in the file: a leaf of a `use` tree, or a path in code.
#[derive(Debug)]
pub(crate) struct PathRef {
    pub scope: Scope,
    /// Raw segments as written (`super`, `self`, `crate`, `$crate` included).
    pub segments: Vec<String>,
    pub line: usize,
    /// For a `use` leaf: the name it brings into scope (`None` for `as _`).
    pub name: Option<String>,
    pub glob: bool,
    /// A `use` (rather than a path in code).
    pub is_use: bool,
    /// A `use` at module level (so it is visible as `module::name`).
    pub module_level: bool,
}

#[derive(Debug, Default)]
pub(crate) struct FileFacts {
    /// The file starts with `#![cfg(test)]`.
    pub test_only: bool,
    pub mods: Vec<ModDecl>,
    pub paths: Vec<PathRef>,
    /// Items defined at module level: (scope, name).
    pub defs: Vec<(Scope, String)>,
}

/// What an opening brace belongs to.
enum Open {
    InlineMod,
    Other,
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn",
    "struct",
    "enum",
    "union",
    "trait",
    "type",
    "const",
    "static",
    "impl",
    "mod",
    "use",
    "pub",
    "async",
    "unsafe",
    "extern",
    "macro_rules",
];
const DEF_KEYWORDS: &[&str] = &[
    "fn", "struct", "enum", "union", "trait", "type", "const", "static",
];
const PATH_ROOTS: &[&str] = &["crate", "$crate", "super", "self"];

struct Parser {
    toks: Vec<Token>,
    at: usize,
    stack: Vec<(Open, Option<String>)>,
    facts: FileFacts,
}

impl Parser {
    fn tok(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.at + ahead).map(|t| &t.tok)
    }

    fn ident(&self, ahead: usize) -> Option<&str> {
        match self.tok(ahead) {
            Some(Tok::Ident(name)) => Some(name),
            _ => None,
        }
    }

    fn is_punct(&self, ahead: usize, c: char) -> bool {
        self.tok(ahead) == Some(&Tok::Punct(c))
    }

    fn scope(&self) -> Scope {
        self.stack
            .iter()
            .filter_map(|(_, name)| name.clone())
            .collect()
    }

    fn module_level(&self) -> bool {
        matches!(self.stack.last(), None | Some((Open::InlineMod, _)))
    }

    /// Index just past the bracket group opening at `self.at`.
    fn skip_group(&mut self) {
        let mut depth = 0usize;
        while let Some(tok) = self.tok(0).cloned() {
            self.at += 1;
            match tok {
                Tok::Punct('(' | '[' | '{') => depth += 1,
                Tok::Punct(')' | ']' | '}') => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Reads `#[..]` or `#![..]` at `self.at`; returns (is `cfg(test)`, `path = ".."` value).
    fn attribute(&mut self) -> (bool, Option<String>) {
        let start = self.at + if self.is_punct(1, '!') { 2 } else { 1 };
        self.at = start;
        self.skip_group();
        let body: Vec<&Tok> = self.toks[start + 1..self.at - 1]
            .iter()
            .map(|t| &t.tok)
            .collect();
        let ident = |k: usize, name: &str| matches!(body.get(k), Some(Tok::Ident(n)) if n == name);
        let cfg_test = ident(0, "cfg")
            && (ident(2, "test") && body.len() == 4
                || ident(2, "all")
                    && body
                        .iter()
                        .any(|t| matches!(t, Tok::Ident(n) if n == "test")));
        let path = match body.as_slice() {
            [Tok::Ident(p), Tok::Punct('='), Tok::Str(value)] if p == "path" => Some(value.clone()),
            _ => None,
        };
        (cfg_test, path)
    }

    /// Skips the item (or field, arm, statement) starting at `self.at`.
    fn skip_item(&mut self) {
        let is_item = self
            .ident(0)
            .is_some_and(|name| ITEM_KEYWORDS.contains(&name));
        while let Some(tok) = self.tok(0).cloned() {
            match tok {
                Tok::Punct('(' | '[') => self.skip_group(),
                Tok::Punct('{') => {
                    self.skip_group();
                    return;
                }
                Tok::Punct(')' | ']' | '}') => return, // the end of the enclosing group
                Tok::Punct(';') => {
                    self.at += 1;
                    return;
                }
                Tok::Punct(',') if !is_item => {
                    self.at += 1;
                    return;
                }
                _ => self.at += 1,
            }
        }
    }

    /// `use` tree leaves, from just after `use` to just past the `;`.
    fn use_tree(&mut self, prefix: Vec<String>, out: &mut Vec<PathRef>) {
        match self.tok(0).cloned() {
            Some(Tok::Punct('{')) => {
                self.at += 1;
                while let Some(tok) = self.tok(0).cloned() {
                    match tok {
                        Tok::Punct('}') => {
                            self.at += 1;
                            return;
                        }
                        Tok::Punct(',') => self.at += 1,
                        _ => {
                            let before = self.at;
                            self.use_tree(prefix.clone(), out);
                            if self.at == before {
                                self.at += 1; // something unexpected: step over it
                            }
                        }
                    }
                }
            }
            Some(Tok::Punct('*')) => {
                self.at += 1;
                out.push(self.leaf(prefix, None, true));
            }
            Some(Tok::Ident(name)) => {
                self.at += 1;
                let mut segments = prefix;
                segments.push(name.clone());
                if self.tok(0) == Some(&Tok::PathSep) {
                    self.at += 1;
                    self.use_tree(segments, out);
                    return;
                }
                let mut bound = Some(name);
                if self.ident(0) == Some("as") {
                    bound = self.ident(1).filter(|n| *n != "_").map(str::to_owned);
                    self.at += 2;
                }
                if segments.last().is_some_and(|s| s == "self") {
                    segments.pop();
                    if bound.as_deref() == Some("self") {
                        bound = segments.last().cloned();
                    }
                }
                out.push(self.leaf(segments, bound, false));
            }
            _ => {}
        }
    }

    fn leaf(&self, segments: Vec<String>, name: Option<String>, glob: bool) -> PathRef {
        PathRef {
            scope: self.scope(),
            segments,
            line: self.toks[self.at.saturating_sub(1)].line,
            name,
            glob,
            is_use: true,
            module_level: self.module_level(),
        }
    }

    fn use_decl(&mut self) {
        self.at += 1; // `use`
        let mut prefix = Vec::new();
        if self.tok(0) == Some(&Tok::PathSep) {
            self.at += 1;
            prefix.push("::".to_owned()); // an external crate
        }
        let mut leaves = Vec::new();
        self.use_tree(prefix, &mut leaves);
        self.facts.paths.extend(leaves);
        while self.tok(0).is_some_and(|t| *t != Tok::Punct(';')) {
            self.at += 1;
        }
    }

    /// A path in code starting with `crate`, `super`, `self` or `$crate` followed by `::`.
    fn code_path(&mut self) {
        let mut segments = vec![self.ident(0).unwrap_or_default().to_owned()];
        self.at += 1;
        while self.tok(0) == Some(&Tok::PathSep) {
            let Some(name) = self.ident(1).map(str::to_owned) else {
                break; // `::<` or `::{`
            };
            segments.push(name);
            self.at += 2;
        }
        self.facts.paths.push(PathRef {
            scope: self.scope(),
            segments,
            line: self.toks[self.at - 1].line,
            name: None,
            glob: false,
            is_use: false,
            module_level: false,
        });
    }

    fn module(&mut self, path_attr: Option<String>) {
        let Some(name) = self.ident(1).map(str::to_owned) else {
            self.at += 1;
            return;
        };
        let inline = self.is_punct(2, '{');
        self.facts.mods.push(ModDecl {
            scope: self.scope(),
            name: name.clone(),
            inline,
            path: path_attr,
        });
        self.at += 3;
        if inline {
            self.stack.push((Open::InlineMod, Some(name)));
        }
    }

    fn run(mut self) -> FileFacts {
        let mut cfg_test = false;
        let mut path_attr = None;
        while let Some(tok) = self.tok(0).cloned() {
            if tok == Tok::Punct('#') && (self.is_punct(1, '[') || self.is_punct(1, '!')) {
                let inner = self.is_punct(1, '!');
                let (test, path) = self.attribute();
                if inner && test && self.stack.is_empty() {
                    self.facts.test_only = true;
                } else if !inner {
                    cfg_test |= test;
                    path_attr = path.or(path_attr);
                }
                continue;
            }
            if std::mem::take(&mut cfg_test) {
                path_attr = None;
                self.skip_item();
                continue;
            }
            let attr = path_attr.take();
            match tok {
                Tok::Punct('{') => {
                    self.stack.push((Open::Other, None));
                    self.at += 1;
                }
                Tok::Punct('}') => {
                    self.stack.pop();
                    self.at += 1;
                }
                Tok::Ident(word) => match word.as_str() {
                    "pub" if self.is_punct(1, '(') => {
                        self.at += 1;
                        self.skip_group(); // `pub(in crate::x)` is no use of x
                    }
                    "mod" => self.module(attr),
                    "use" => self.use_decl(),
                    root if PATH_ROOTS.contains(&root) && self.tok(1) == Some(&Tok::PathSep) => {
                        self.code_path()
                    }
                    "macro_rules" if self.is_punct(1, '!') => {
                        if let Some(name) = self.ident(2).map(str::to_owned) {
                            self.facts.defs.push((self.scope(), name));
                        }
                        self.at += 3;
                    }
                    kw if DEF_KEYWORDS.contains(&kw) && self.module_level() => {
                        if let Some(name) = self.ident(1).filter(|n| *n != "fn") {
                            self.facts.defs.push((self.scope(), name.to_owned()));
                        }
                        self.at += 1;
                    }
                    _ => self.at += 1,
                },
                _ => self.at += 1,
            }
        }
        self.facts
    }
}

/// Reads the facts of one source file.
pub(crate) fn parse(src: &str) -> FileFacts {
    Parser {
        toks: tokenize(src),
        at: 0,
        stack: Vec::new(),
        facts: FileFacts::default(),
    }
    .run()
}
