//! Circles among sibling modules: at every level of the module tree, the children of one
//! module must use each other one way only, directly or through other siblings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::Edge;

/// Sibling modules that use each other in a circle (one strongly connected component).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    /// The module whose children these are (`crate` for the top level).
    pub parent: String,
    /// The siblings in the circle, sorted, as full paths (`window::read`).
    pub modules: Vec<String>,
    /// One use per sibling edge in the circle: (sibling from, sibling to, the use behind it).
    pub edges: Vec<(String, String, Edge)>,
}

impl fmt::Display for Circle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "circle among the modules of {}: {}",
            self.parent,
            self.modules.join(", ")
        )?;
        for (from, to, edge) in &self.edges {
            write!(f, "  {from} -> {to}: {}:{} ", edge.file, edge.line)?;
            writeln!(f, "({} uses {})", edge.from, edge.to)?;
        }
        Ok(())
    }
}

/// The sibling pair an edge stands for: the children of the deepest common ancestor it
/// crosses (`a::x` using `b::y` is `a -> b` at the top; `a::x` using `a::y` is `x -> y` in `a`).
fn siblings(edge: &Edge) -> Option<(String, String, String)> {
    let from: Vec<&str> = module_segments(&edge.from);
    let to: Vec<&str> = module_segments(&edge.to);
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common >= from.len() || common >= to.len() {
        return None; // a module using its ancestor or descendant
    }
    let full = |path: &[&str]| path.join("::");
    let parent = if common == 0 {
        "crate".to_owned()
    } else {
        full(&from[..common])
    };
    Some((parent, full(&from[..=common]), full(&to[..=common])))
}

fn module_segments(name: &str) -> Vec<&str> {
    if name == "crate" {
        Vec::new()
    } else {
        name.split("::").collect()
    }
}

/// Tarjan's strongly connected components of one level's sibling graph.
struct Components<'a> {
    graph: &'a BTreeMap<String, BTreeMap<String, Edge>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    found: Vec<Vec<String>>,
}

impl<'a> Components<'a> {
    fn visit(&mut self, node: &'a str) {
        let n = self.index.len();
        self.index.insert(node, n);
        self.low.insert(node, n);
        self.stack.push(node);
        self.on_stack.insert(node);
        for next in self.graph.get(node).into_iter().flat_map(|m| m.keys()) {
            let next = next.as_str();
            if !self.index.contains_key(next) {
                self.visit(next);
                let low = self.low[node].min(self.low[next]);
                self.low.insert(node, low);
            } else if self.on_stack.contains(next) {
                let low = self.low[node].min(self.index[next]);
                self.low.insert(node, low);
            }
        }
        if self.low[node] == self.index[node] {
            let mut component = Vec::new();
            while let Some(top) = self.stack.pop() {
                self.on_stack.remove(top);
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                self.found.push(component);
            }
        }
    }
}

/// Every circle among siblings, at every level.
pub(crate) fn circles(edges: &[Edge]) -> Vec<Circle> {
    // parent -> sibling from -> sibling to -> the first use seen
    let mut levels: BTreeMap<String, BTreeMap<String, BTreeMap<String, Edge>>> = BTreeMap::new();
    for edge in edges {
        if let Some((parent, from, to)) = siblings(edge) {
            levels
                .entry(parent)
                .or_default()
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert_with(|| edge.clone());
        }
    }
    let mut out = Vec::new();
    for (parent, graph) in &levels {
        let mut search = Components {
            graph,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for node in graph.keys() {
            if !search.index.contains_key(node.as_str()) {
                search.visit(node);
            }
        }
        for modules in search.found {
            let members: BTreeSet<&String> = modules.iter().collect();
            let edges = graph
                .iter()
                .filter(|(from, _)| members.contains(from))
                .flat_map(|(from, tos)| {
                    tos.iter()
                        .filter(|(to, _)| members.contains(to))
                        .map(move |(to, e)| (from.clone(), to.clone(), e.clone()))
                })
                .collect();
            out.push(Circle {
                parent: parent.clone(),
                modules,
                edges,
            });
        }
    }
    out
}

/// Compares the circles found with the ones a crate knows about (being cut elsewhere): an
/// unknown circle fails, and so does a known one that no longer exists (remove its entry).
pub(crate) fn compare(found: &[Circle], known: &[&[&str]]) -> Result<(), String> {
    let key = |modules: &[&str]| -> BTreeSet<String> {
        modules.iter().map(|m| (*m).to_owned()).collect()
    };
    let known: Vec<BTreeSet<String>> = known.iter().map(|k| key(k)).collect();
    let mut problems = Vec::new();
    for circle in found {
        let modules: BTreeSet<String> = circle.modules.iter().cloned().collect();
        if !known.contains(&modules) {
            problems.push(format!(
                "{circle}  Make these uses point one way: move what both sides need into a \
                 module below them, or have the lower one take a value or trait instead."
            ));
        }
    }
    for k in &known {
        if !found
            .iter()
            .any(|c| c.modules.iter().cloned().collect::<BTreeSet<_>>() == *k)
        {
            let names: Vec<&str> = k.iter().map(String::as_str).collect();
            problems.push(format!(
                "the known circle {{{}}} no longer exists (or changed): remove or update its \
                 entry in KNOWN_CIRCLES",
                names.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
