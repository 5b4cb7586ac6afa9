//! The window module's files point one way: no file uses another that (directly or through
//! others) uses it back. Reads the sources: `super::x`, `crate::window::x` and
//! `crate::window::{x, ..}` in code (comments skipped) name file `x`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The window files each window file names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/window");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .filter(|name| name != "mod")
        .collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(dir.join(format!("{file}.rs"))).unwrap();
        let mut uses = BTreeSet::new();
        for line in text.lines().map(str::trim_start) {
            if line.starts_with("//") {
                continue;
            }
            for prefix in ["super::", "crate::window::"] {
                let mut rest = line;
                while let Some(at) = rest.find(prefix) {
                    rest = &rest[at + prefix.len()..];
                    let names = match rest.strip_prefix('{') {
                        Some(group) => group.split('}').next().unwrap_or(""),
                        None => rest,
                    };
                    for name in names.split(',') {
                        let name: String = name
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if files.contains(&name) && name != *file {
                            uses.insert(name);
                        }
                    }
                }
            }
        }
        edges.insert(file.clone(), uses);
    }
    edges
}

#[test]
fn no_window_file_uses_one_that_uses_it_back() {
    let edges = edges();
    assert!(
        edges["close"].contains("windowed"),
        "the reader sees uses: {edges:?}"
    );
    // Depth-first from each file: reaching it again is a circle.
    for start in edges.keys() {
        let mut stack: Vec<Vec<&String>> = vec![vec![start]];
        while let Some(path) = stack.pop() {
            for next in &edges[*path.last().unwrap()] {
                assert!(next != start, "a circle: {path:?} -> {next}");
                if !path.contains(&next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}
