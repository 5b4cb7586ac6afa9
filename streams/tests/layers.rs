//! The crate's layers point one way (ARCHITECTURE.md): a module may use modules of its own
//! layer or below, never above. This reads every `crate::` path in the sources and fails on
//! one that points up, so a circle cannot come back unnoticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layers, bottom (0) to top. A module missing here fails the test: place it.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("settings", 0),
    ("broker", 0),
    ("timestamp", 0),
    ("codec", 1),
    ("record", 1),
    ("offsets", 1),
    ("outbox", 1),
    ("topic", 1),
    ("stream", 2),
    ("table", 2),
    ("window", 2),
    ("declarations", 3),
    ("runtime", 4),
    ("app", 5),
    ("cli", 6),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`None` for lib.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib").then_some(name)
}

/// Every `crate::module` named in the code (comments skipped), with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
            rest = tail;
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let own = *layers
            .get(module.as_str())
            .unwrap_or_else(|| panic!("module {module} has no layer in tests/layers.rs"));
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in crate_paths(&text) {
            let Some(&theirs) = layers.get(used.as_str()) else {
                continue; // a re-export from lib.rs (crate::Error...)
            };
            if theirs > own {
                violations.push(format!(
                    "{}:{line}: {module} (layer {own}) uses {used} (layer {theirs})",
                    file.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    let found = crate_paths("use crate::app::App;\n// crate::cli in a comment\nlet x = crate::runtime::Runtime::start();");
    assert_eq!(
        found,
        vec![(1, "app".to_owned()), (3, "runtime".to_owned())]
    );
}
