//! The module graph of one of our crates, read from its sources, and the circles in it.
//!
//! Each crate's `tests/modules.rs` loads its own `src/` and fails when sibling modules use
//! each other in a circle, at any level of the module tree. The reading is textual but
//! knows Rust's lexical structure: comments, strings and chars are skipped; grouped
//! `use crate::{a::X, b::{Y, Z}}` trees over several lines, `super::super::`, `self::` and
//! paths in code are followed; a name re-exported by a module (`pub use x::Y`, `use`, or a
//! glob) resolves to the module that defines it, so `crate::Error` counts as a use of
//! `error`. Items under `#[cfg(test)]` (test modules above all) are left out of the graph;
//! inline `mod x { .. }` blocks fold into their file's module.
//!
//! Not seen: names reached only through a glob import of an ancestor (`use super::*` counts
//! as a use of the ancestor) and macros called by their bare name.

#![warn(missing_docs)]

mod circles;
mod lex;
mod parse;
mod tree;

use std::collections::BTreeMap;
use std::path::Path;

pub use circles::Circle;

/// One module using another, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The module whose file holds the use (`a::b`; the root is `crate`).
    pub from: String,
    /// The module the path lands in, after following re-exports.
    pub to: String,
    /// The file, as `src/a/b.rs`.
    pub file: String,
    /// The line of the path's last segment (1-based).
    pub line: usize,
}

/// The file modules of a crate and every use between them.
#[derive(Debug)]
pub struct ModuleGraph {
    modules: Vec<String>,
    edges: Vec<Edge>,
}

struct Dir<'a>(&'a Path);

impl tree::Sources for Dir<'_> {
    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(rel)).ok()
    }
}

struct Memory<'a>(BTreeMap<&'a str, &'a str>);

impl tree::Sources for Memory<'_> {
    fn read(&self, rel: &str) -> Option<String> {
        self.0.get(rel).map(|s| (*s).to_owned())
    }
}

impl ModuleGraph {
    /// Reads the crate whose sources are in `src` (starting at `src/lib.rs`).
    pub fn load(src: &Path) -> Result<Self, String> {
        let tree = tree::Tree::load(&Dir(src))?;
        Ok(ModuleGraph {
            modules: tree.module_names(),
            edges: tree.edges("src"),
        })
    }

    /// Reads a crate from in-memory files: (path relative to `src/`, text).
    pub fn from_files(files: &[(&str, &str)]) -> Result<Self, String> {
        let tree = tree::Tree::load(&Memory(files.iter().copied().collect()))?;
        Ok(ModuleGraph {
            modules: tree.module_names(),
            edges: tree.edges("src"),
        })
    }

    /// Every file module (`a::b`; the root is `crate`), sorted.
    pub fn modules(&self) -> &[String] {
        &self.modules
    }

    /// Every use of one module by another.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Every circle among siblings, at every level of the tree.
    pub fn circles(&self) -> Vec<Circle> {
        circles::circles(&self.edges)
    }

    /// `Ok` when the circles found are exactly `known` (each given by its modules' full
    /// paths, in any order); otherwise what to fix, one paragraph per circle.
    pub fn check_circles(&self, known: &[&[&str]]) -> Result<(), String> {
        circles::compare(&self.circles(), known)
    }
}

/// Loads the crate at `manifest_dir` (pass `env!("CARGO_MANIFEST_DIR")`) and panics unless
/// its circles are exactly `known`.
pub fn assert_circles(manifest_dir: &str, known: &[&[&str]]) -> ModuleGraph {
    let src = Path::new(manifest_dir).join("src");
    let graph = ModuleGraph::load(&src).unwrap_or_else(|e| panic!("{e}"));
    if let Err(problems) = graph.check_circles(known) {
        panic!("module circles in {}:\n{problems}", src.display());
    }
    graph
}
