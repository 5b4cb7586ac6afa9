//! The checker on small in-memory crates: each blind spot of the old layers test, and
//! circles found or not.

use module_graph::{Edge, ModuleGraph};

fn graph(files: &[(&str, &str)]) -> ModuleGraph {
    ModuleGraph::from_files(files).unwrap()
}

/// Edges as `from -> to @line`, without duplicates.
fn edges(g: &ModuleGraph) -> Vec<String> {
    let mut out: Vec<String> = g
        .edges()
        .iter()
        .map(|e| format!("{} -> {} @{}", e.from, e.to, e.line))
        .collect();
    out.dedup();
    out
}

/// The circles as their sorted module lists.
fn circles(g: &ModuleGraph) -> Vec<Vec<String>> {
    g.circles().into_iter().map(|c| c.modules).collect()
}

const LIB_ABC: &str = "mod a;\nmod b;\nmod c;\n";

#[test]
fn a_grouped_use_over_several_lines_names_each_module_on_its_line() {
    let a = "use crate::{\n    b::B,\n    c::{\n        C1,\n        C2 as Other,\n    },\n};\n";
    let g = graph(&[("lib.rs", LIB_ABC), ("a.rs", a), ("b.rs", ""), ("c.rs", "")]);
    assert_eq!(
        edges(&g),
        ["a -> b @2", "a -> c @4", "a -> c @5"],
        "a grouped use is one edge per leaf"
    );
}

#[test]
fn a_grouped_use_closes_a_circle() {
    let a = "use crate::{\n    b::{self,\n B},\n};\n";
    let b = "pub fn f() { let _ = crate::a::A; }\n";
    let g = graph(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", a), ("b.rs", b)]);
    assert_eq!(circles(&g), [["a", "b"]]);
}

#[test]
fn a_name_re_exported_by_lib_rs_counts_as_its_module() {
    let lib =
        "mod error;\nmod store;\npub use error::{Error, Result};\npub use self::store::Store;\n";
    let error = "use crate::Store;\npub enum Error {}\n";
    let store = "use crate::{Error, Result};\npub trait Store {}\n";
    let g = graph(&[("lib.rs", lib), ("error.rs", error), ("store.rs", store)]);
    assert_eq!(
        edges(&g),
        [
            "error -> store @1",
            "store -> error @1",
            "crate -> error @3",
            "crate -> store @4"
        ],
        "crate::Error is error::Error, crate::Store (via self::) is store::Store"
    );
    assert_eq!(circles(&g), [["error", "store"]]);
}

#[test]
fn a_glob_re_export_resolves_to_the_module_defining_the_name() {
    let lib = "mod a;\nmod b;\nmod c;\npub use b::*;\npub use c::*;\n";
    let a = "fn f() { crate::InC::new(); }\n";
    let g = graph(&[
        ("lib.rs", lib),
        ("a.rs", a),
        ("b.rs", "pub struct InB;"),
        ("c.rs", "pub struct InC;"),
    ]);
    assert_eq!(edges(&g), ["a -> c @1", "crate -> b @4", "crate -> c @5"]);
}

#[test]
fn super_super_climbs_two_levels() {
    let lib = "mod x;\n";
    let x = "mod y;\nmod w;\n";
    let y = "mod z;\n";
    let z = "use super::super::w::W;\n";
    let w = "pub struct W;\nfn f() -> super::y::Y { todo!() }\n";
    let files = [
        ("lib.rs", lib),
        ("x/mod.rs", x),
        ("x/y.rs", y),
        ("x/y/z.rs", z),
        ("x/w.rs", w),
    ];
    let g = graph(&files);
    assert_eq!(edges(&g), ["x::y::z -> x::w @1", "x::w -> x::y @2"]);
    let found = g.circles();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].parent, "x");
    assert_eq!(found[0].modules, ["x::w", "x::y"]);
}

#[test]
fn self_paths_and_re_exports_in_a_mod_rs_are_followed() {
    // `a::c` reaches `a::b` through a's private re-export; `a::b` names `a::c` with `self::`
    // inside an inline module folded into b.
    let a = "mod b;\nmod c;\npub(crate) use self::b::B;\n";
    let b = "pub struct B;\nmod inner {\n    fn f() { self::super::super::c::g(); }\n}\n";
    let c = "use super::B;\npub fn g() {}\n";
    let files = [
        ("lib.rs", "mod a;\n"),
        ("a/mod.rs", a),
        ("a/b.rs", b),
        ("a/c.rs", c),
    ];
    let g = graph(&files);
    assert_eq!(
        edges(&g),
        ["a::b -> a::c @3", "a::c -> a::b @1", "a -> a::b @3"]
    );
    assert_eq!(circles(&g), [["a::b", "a::c"]]);
}

#[test]
fn comments_strings_and_test_modules_are_not_uses() {
    let a = r##"
// use crate::b::B;
/* crate::b::B */
/// [`crate::b::B`]
const S: &str = "crate::b::B";
const R: &str = r#"crate::b::B"#;
const C: char = '"';
pub(in crate::b) fn visible_in_b() {}
#[cfg(test)]
use crate::b::B;
#[cfg(test)]
mod tests {
    use crate::b::B;
}
#[cfg(test)]
mod more_tests;
"##;
    let g = graph(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", a),
        ("b.rs", "use crate::a::S;"),
    ]);
    assert_eq!(edges(&g), ["b -> a @1"]);
    assert!(g.circles().is_empty());
    assert_eq!(
        g.modules(),
        ["a", "b", "crate"],
        "the test module is no module of the graph"
    );
}

#[test]
fn a_one_way_graph_has_no_circle() {
    let g = graph(&[
        ("lib.rs", LIB_ABC),
        ("a.rs", "use crate::b::B;\nuse crate::c::C;\n"),
        ("b.rs", "use crate::c::C;\npub struct B;\n"),
        ("c.rs", "pub struct C;\n"),
    ]);
    assert_eq!(edges(&g).len(), 3);
    assert!(g.circles().is_empty(), "{:?}", g.circles());
    assert!(g.check_circles(&[]).is_ok());
}

#[test]
fn a_transitive_circle_is_found_with_one_line_per_edge() {
    let g = graph(&[
        ("lib.rs", LIB_ABC),
        ("a.rs", "use crate::b::B;\n"),
        ("b.rs", "\nuse crate::c::C;\n"),
        ("c.rs", "\n\nfn f() { crate::a::g() }\n"),
    ]);
    let found = g.circles();
    assert_eq!(found.len(), 1);
    let report = found[0].to_string();
    assert!(report.contains("crate: a, b, c"), "{report}");
    for line in [
        "a -> b: src/a.rs:1",
        "b -> c: src/b.rs:2",
        "c -> a: src/c.rs:3",
    ] {
        assert!(report.contains(line), "{line} missing from:\n{report}");
    }
}

#[test]
fn a_use_deep_inside_a_module_counts_at_the_level_where_the_paths_part() {
    // a::x uses b::y and b::y uses a::z: a circle a <-> b at the top, none inside a or b.
    let lib = "mod a;\nmod b;\n";
    let files = [
        ("lib.rs", lib),
        ("a/mod.rs", "mod x;\nmod z;\n"),
        ("a/x.rs", "use crate::b::y::Y;\n"),
        ("a/z.rs", "pub struct Z;\n"),
        ("b/mod.rs", "pub mod y;\n"),
        ("b/y.rs", "pub struct Y(crate::a::z::Z);\n"),
    ];
    let g = graph(&files);
    let found = g.circles();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].parent, "crate");
    assert_eq!(found[0].modules, ["a", "b"]);
    let (from, to, edge) = &found[0].edges[0];
    assert_eq!((from.as_str(), to.as_str()), ("a", "b"));
    assert_eq!(
        *edge,
        Edge {
            from: "a::x".into(),
            to: "b::y".into(),
            file: "src/a/x.rs".into(),
            line: 1
        }
    );
}

#[test]
fn known_circles_must_match_exactly() {
    let g = graph(&[
        ("lib.rs", LIB_ABC),
        ("a.rs", "use crate::b::B;\n"),
        ("b.rs", "use crate::a::A;\n"),
        ("c.rs", ""),
    ]);
    assert!(g.check_circles(&[&["b", "a"]]).is_ok());
    let unknown = g.check_circles(&[]).unwrap_err();
    assert!(unknown.contains("a, b"), "{unknown}");
    let gone = g.check_circles(&[&["a", "b"], &["a", "c"]]).unwrap_err();
    assert!(gone.contains("{a, c} no longer exists"), "{gone}");
}

#[test]
fn a_missing_module_file_is_an_error_naming_the_files_tried() {
    let err = ModuleGraph::from_files(&[("lib.rs", "mod a;\nmod b;\n"), ("a.rs", "")]).unwrap_err();
    assert!(err.contains("src/b.rs, src/b/mod.rs"), "{err}");
}
