//! The module tree of a crate (from `lib.rs`, following `mod` declarations) and the
//! resolution of every path to the module it lands in, re-exports and globs followed.

use std::collections::{BTreeMap, BTreeSet};

use crate::parse::{parse, FileFacts};
use crate::Edge;

/// A module path from the crate root (empty for the root).
pub(crate) type ModPath = Vec<String>;

/// Where a `use` points: a path from the crate root, or another crate (`None`).
type Target = Option<ModPath>;

#[derive(Default)]
struct Module {
    inline: bool,
    children: BTreeSet<String>,
    defs: BTreeSet<String>,
    uses: BTreeMap<String, Target>,
    globs: Vec<ModPath>,
}

/// Reads a file by its path relative to `src/` (`a/b.rs`).
pub(crate) trait Sources {
    fn read(&self, rel: &str) -> Option<String>;
}

pub(crate) struct Tree {
    modules: BTreeMap<ModPath, Module>,
    /// Each file module with its file and facts.
    files: Vec<(ModPath, String, FileFacts)>,
}

/// How deep re-exports may chain before the resolution gives up (a `use` loop).
const MAX_HOPS: usize = 32;

fn dir_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

impl Tree {
    pub(crate) fn load(sources: &dyn Sources) -> Result<Self, String> {
        let mut tree = Tree {
            modules: BTreeMap::new(),
            files: Vec::new(),
        };
        let lib = sources
            .read("lib.rs")
            .ok_or("no src/lib.rs: the module graph starts at the library root")?;
        tree.add_file(sources, Vec::new(), "lib.rs".to_owned(), lib, "")?;
        tree.collect_uses();
        Ok(tree)
    }

    /// Adds the file module `path` (read from `rel`); its `mod x;` children live in `child_dir`.
    fn add_file(
        &mut self,
        sources: &dyn Sources,
        path: ModPath,
        rel: String,
        text: String,
        child_dir: &str,
    ) -> Result<(), String> {
        let facts = parse(&text);
        if facts.test_only {
            return Ok(());
        }
        self.modules.entry(path.clone()).or_default();
        if let Some(parent) = path.split_last().map(|(_, p)| p.to_vec()) {
            let name = path.last().cloned().unwrap_or_default();
            self.modules
                .entry(parent)
                .or_default()
                .children
                .insert(name);
        }
        for (scope, name) in &facts.defs {
            let at = [path.as_slice(), scope].concat();
            self.modules
                .entry(at)
                .or_default()
                .defs
                .insert(name.clone());
        }
        for decl in &facts.mods {
            let parent = [path.as_slice(), &decl.scope].concat();
            let mut child = parent.clone();
            child.push(decl.name.clone());
            if decl.inline {
                self.modules
                    .entry(parent)
                    .or_default()
                    .children
                    .insert(decl.name.clone());
                self.modules.entry(child).or_default().inline = true;
                continue;
            }
            let dir = decl
                .scope
                .iter()
                .fold(child_dir.to_owned(), |dir, s| join(&dir, s));
            let candidates = match &decl.path {
                Some(p) => vec![join(dir_of(&rel), p)],
                None => vec![
                    join(&dir, &format!("{}.rs", decl.name)),
                    join(&dir, &format!("{}/mod.rs", decl.name)),
                ],
            };
            let found = candidates
                .iter()
                .find_map(|c| sources.read(c).map(|text| (c.clone(), text)));
            let Some((file, text)) = found else {
                return Err(format!(
                    "src/{rel} declares `mod {}` but none of src/{} exists",
                    decl.name,
                    candidates.join(", src/")
                ));
            };
            let grand_dir = if file.ends_with("mod.rs") || decl.path.is_some() {
                dir_of(&file).to_owned()
            } else {
                join(&dir, &decl.name)
            };
            self.add_file(sources, child, file, text, &grand_dir)?;
        }
        self.files.push((path, rel, facts));
        Ok(())
    }

    /// A path as written in `scope`, made absolute (`None`: another crate's path).
    fn absolute(&self, scope: &[String], segments: &[String]) -> Target {
        let (first, rest) = segments.split_first()?;
        match first.as_str() {
            "crate" | "$crate" => Some(rest.to_vec()),
            "self" if rest.first().is_some_and(|s| s == "super") => self.absolute(scope, rest),
            "self" => Some([scope, rest].concat()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = &scope[..scope.len().saturating_sub(ups)];
                Some([base, &segments[ups..]].concat())
            }
            name if self
                .modules
                .get(scope)
                .is_some_and(|m| m.children.contains(name)) =>
            {
                Some([scope, segments].concat())
            }
            _ => None,
        }
    }

    /// Records the module-level `use` declarations: the names they bring in (re-exports and
    /// private imports alike, which child modules reach through `super::`).
    fn collect_uses(&mut self) {
        let mut found = Vec::new();
        for (path, _, facts) in &self.files {
            for p in facts.paths.iter().filter(|p| p.is_use && p.module_level) {
                let scope = [path.as_slice(), &p.scope].concat();
                let target = self.absolute(&scope, &p.segments);
                found.push((scope, p.name.clone(), p.glob, target));
            }
        }
        for (scope, name, glob, target) in found {
            let module = self.modules.entry(scope).or_default();
            match (glob, name, target) {
                (true, _, Some(target)) => module.globs.push(target),
                (false, Some(name), target) => {
                    module.uses.insert(name, target);
                }
                _ => {}
            }
        }
    }

    /// Whether `module` has anything named `name` (a child, an item or an import).
    fn names(&self, module: &[String], name: &str) -> bool {
        self.modules.get(module).is_some_and(|m| {
            m.children.contains(name) || m.defs.contains(name) || m.uses.contains_key(name)
        })
    }

    /// The module an absolute path lands in (`None`: it leaves the crate).
    fn resolve(&self, path: &[String], hops: usize) -> Option<ModPath> {
        let mut at: ModPath = Vec::new();
        for (i, seg) in path.iter().enumerate() {
            let Some(module) = self.modules.get(&at) else {
                break;
            };
            if module.children.contains(seg) {
                at.push(seg.clone());
                continue;
            }
            if module.defs.contains(seg) || hops >= MAX_HOPS {
                break;
            }
            if let Some(target) = module.uses.get(seg) {
                let next = [target.as_ref()?.as_slice(), &path[i + 1..]].concat();
                return self.resolve(&next, hops + 1);
            }
            for glob in &module.globs {
                if let Some(g) = self.resolve(glob, hops + 1) {
                    if self.names(&g, seg) {
                        return self.resolve(&[g.as_slice(), &path[i..]].concat(), hops + 1);
                    }
                }
            }
            break;
        }
        Some(at)
    }

    /// The file module holding `path` (inline modules fold into their file's module).
    fn file_module(&self, mut path: ModPath) -> ModPath {
        while self.modules.get(&path).is_some_and(|m| m.inline) {
            path.pop();
        }
        path
    }

    /// Every file module, as `a::b` (the root as `crate`).
    pub(crate) fn module_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.files.iter().map(|(p, _, _)| name(p)).collect();
        names.sort();
        names
    }

    /// Every use of one file module by another, with where it is written.
    pub(crate) fn edges(&self, src_label: &str) -> Vec<Edge> {
        let mut edges = Vec::new();
        for (path, rel, facts) in &self.files {
            for p in &facts.paths {
                let scope = [path.as_slice(), &p.scope].concat();
                let Some(abs) = self.absolute(&scope, &p.segments) else {
                    continue;
                };
                let Some(target) = self.resolve(&abs, 0) else {
                    continue;
                };
                let target = self.file_module(target);
                if target != *path {
                    edges.push(Edge {
                        from: name(path),
                        to: name(&target),
                        file: format!("{src_label}/{rel}"),
                        line: p.line,
                    });
                }
            }
        }
        edges
    }
}

/// `a::b`, or `crate` for the root.
pub(crate) fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}
