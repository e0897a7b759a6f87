//! Generates the feature list of the window extractor from its one source,
//! the table in `src/features/FEATURES.md`.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let table = "src/features/FEATURES.md";
    println!("cargo::rerun-if-changed={table}");
    let text = std::fs::read_to_string(table).expect("read src/features/FEATURES.md");
    let rows: Vec<[String; 3]> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| name "))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect();
            assert_eq!(
                cells.len(),
                3,
                "{table}: a row needs name, unit and meaning: {l}"
            );
            assert!(
                cells[0]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{table}: feature names are snake_case: {l}"
            );
            [cells[0].clone(), cells[1].clone(), cells[2].clone()]
        })
        .collect();
    assert!(!rows.is_empty(), "{table}: no feature rows");
    let mut out = String::new();
    out.push_str("/// One feature of a window, in table order (generated from `FEATURES.md`).\n");
    out.push_str("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum Feature {\n");
    for [name, _, meaning] in &rows {
        let variant: String = name
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        let _ = writeln!(out, "    /// {}\n    {variant},", meaning.replace('`', "'"));
    }
    out.push_str("}\n\n");
    let _ = writeln!(
        out,
        "/// Number of features of a window.\npub const FEATURE_COUNT: usize = {};\n",
        rows.len()
    );
    out.push_str("/// Name, unit and meaning of every feature, in table order.\npub const FEATURES: [FeatureSpec; FEATURE_COUNT] = [\n");
    for [name, unit, meaning] in &rows {
        let _ = writeln!(
            out,
            "    FeatureSpec {{ name: {name:?}, unit: {unit:?}, meaning: {meaning:?} }},"
        );
    }
    out.push_str("];\n");
    let path = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("features.rs");
    std::fs::write(path, out).expect("write features.rs");
}
