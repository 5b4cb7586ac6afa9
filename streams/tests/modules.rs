//! The modules of streams use each other one way (ARCHITECTURE.md), checked on the sources
//! by the shared checker in tools/module-graph: no circle among sibling modules at any level
//! of the tree, and at the top level a module uses only modules of its own layer or below.

use module_graph::ModuleGraph;

/// Layers, bottom (0) to top. A top-level module missing here fails the test: place it.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("settings", 0),
    ("endpoint", 0),
    ("broker", 0),
    ("timestamp", 0),
    ("clock", 0),
    ("codec", 1),
    ("record", 1),
    ("offsets", 1),
    ("outbox", 1),
    ("metrics", 1),
    ("replies", 1),
    ("topic", 1),
    ("stream", 2),
    ("table", 2),
    ("window", 2),
    ("join", 2),
    ("declarations", 3),
    ("runtime", 4),
    ("web", 5),
    ("app", 6),
    ("cli", 7),
    ("testing", 8),
];

/// Circles being cut on other branches (issue 20). The test fails when one of them no
/// longer exists, so that its entry is removed with the merge that cuts it.
const KNOWN_CIRCLES: &[&[&str]] = &[];

/// The top-level module of a module path (`None` for the crate root).
fn top(module: &str) -> Option<&str> {
    (module != "crate").then(|| module.split("::").next().unwrap_or(module))
}

/// Every use that points to a higher layer, and every top-level module without a layer.
fn layer_violations(graph: &ModuleGraph, layers: &[(&str, u8)]) -> Vec<String> {
    let layer = |module: &str| layers.iter().find(|(m, _)| *m == module).map(|(_, l)| *l);
    let mut out = Vec::new();
    for module in graph.modules().iter().filter_map(|m| top(m)) {
        if layer(module).is_none() && !out.iter().any(|o: &String| o.contains(module)) {
            out.push(format!(
                "module {module} has no layer: add it to LAYERS in tests/modules.rs"
            ));
        }
    }
    for edge in graph.edges() {
        let (Some(from), Some(to)) = (top(&edge.from), top(&edge.to)) else {
            continue;
        };
        if let (Some(own), Some(theirs)) = (layer(from), layer(to)) {
            if theirs > own {
                out.push(format!(
                    "{}:{}: {} (layer {own}) uses {} (layer {theirs})",
                    edge.file, edge.line, edge.from, edge.to
                ));
            }
        }
    }
    out
}

fn load() -> ModuleGraph {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    ModuleGraph::load(&src).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn no_module_circle_but_the_known_ones() {
    if let Err(problems) = load().check_circles(KNOWN_CIRCLES) {
        panic!("module circles in streams/src:\n{problems}");
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let violations = layer_violations(&load(), LAYERS);
    assert!(
        violations.is_empty(),
        "imports against the layers (ARCHITECTURE.md), to point down instead:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_upward_use_through_a_re_export() {
    let lib = "mod error;\nmod app;\nmod extra;\npub use app::App;\n";
    let error = "pub enum Error {}\n\nfn f(_: &crate::App) {}\n";
    let graph = ModuleGraph::from_files(&[
        ("lib.rs", lib),
        ("error.rs", error),
        ("app.rs", "pub struct App;\n"),
        ("extra.rs", ""),
    ])
    .unwrap();
    let found = layer_violations(&graph, &[("error", 0), ("app", 5)]);
    assert_eq!(
        found,
        [
            "module extra has no layer: add it to LAYERS in tests/modules.rs",
            "src/error.rs:3: error (layer 0) uses app (layer 5)",
        ]
    );
}
