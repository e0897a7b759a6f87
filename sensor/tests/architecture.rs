//! The architecture, checked on the sources: data flows one way through the
//! stages (`capture → decode → flow → proto → event → {device, features,
//! detect} → alert → sinks`), so no module imports from a later stage, and no
//! two files import each other, directly or round a longer cycle.
//!
//! The test reads `src/` itself: every `use` declaration and every
//! `crate::`/`super::`/`self::` path in the code (comments, strings and
//! `#[cfg(test)]` modules left out: tests may reach anywhere), resolves each
//! path to the file that defines the item (following `pub use` re-exports,
//! which are plumbing, not dependencies), and checks the file graph.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules in data-path order. A module may import from itself and
/// from modules listed before it, never from one listed after it.
const STAGES: &[&str] = &[
    // Units of measure every stage's settings use (`"64M"` as bytes).
    "units",
    "capture",
    "decode",
    "flow",
    "proto",
    "event",
    "device",
    "features",
    "detect",
    "alert",
    "summary",
    "pipeline",
    "config",
    // Tools that drive the pipeline: the PNG canvas and font their plots
    // share, datasets, training, metrics.
    "plot",
    // The lab's labels.csv, read by datasets, training and the eval.
    "labels",
    "dataset",
    "train",
    "eval",
    "telemetry",
    "synth",
    // Dropping root once the capture is open, for the command line.
    "privilege",
    "cli",
];

/// One source file: its module path and what it declares and imports.
#[derive(Debug)]
struct SourceFile {
    path: PathBuf,
    /// e.g. `["proto", "http", "log"]`; empty for `lib.rs`.
    module: Vec<String>,
    /// `pub use` re-exports: name → absolute path.
    reexports: BTreeMap<String, Vec<String>>,
    /// Paths used (absolute, from the crate root).
    uses: Vec<Vec<String>>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments, string and char literals, and the
/// `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && matches!(b.get(i + 1), Some(b'"' | b'#')) && !prev_ident(b, i) {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let rest = &b[i + 1..];
            let len = if rest.first() == Some(&b'\\') {
                rest.iter().position(|&c| c == b'\'').map(|p| p + 1)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(ch) == Some(&b'\'')).then_some(ch + 1)
            };
            match len {
                Some(n) => {
                    i += 1 + n;
                    out.push_str("' '");
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().expect("char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    strip_test_modules(&out)
}

fn prev_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// Removes `#[cfg(test)]` items: an inline `mod x { ... }` (to its closing
/// brace) or a `mod x;` declaration.
fn strip_test_modules(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let brace = after.find('{');
        let semi = after.find(';');
        match (brace, semi) {
            (Some(b), s) if s.is_none_or(|s| b < s) => {
                let mut depth = 0;
                let mut end = after.len();
                for (k, c) in after[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            (_, Some(s)) => rest = &after[s + 1..],
            _ => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Expands a use tree (`a::{b, c::{d, e as f}, self}`) into paths.
fn expand_use_tree(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let mut base = prefix.to_vec();
        base.extend(segments(head));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        for part in split_top(inner) {
            expand_use_tree(part, &base, out);
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p.trim(), a.trim().to_string()),
        None => (tree, String::new()),
    };
    let mut full = prefix.to_vec();
    full.extend(segments(path));
    if full.last().is_some_and(|s| s == "self") {
        full.pop();
    }
    let name = if alias.is_empty() {
        full.last().cloned().unwrap_or_default()
    } else {
        alias
    };
    if full.last().is_some_and(|s| s == "*") {
        full.pop();
    }
    out.push((full, name));
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits on commas that are not inside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Makes `path` (as written in a file of `module`) absolute from the crate
/// root. A file's `self` is its module (for `x/mod.rs`, the folder's),
/// `super` that module's parent; any other first segment is taken as a child
/// of the module (`use registry::X` in `proto/mod.rs`), and paths into other
/// crates (`std::...`) are dropped when they resolve to no module.
fn absolute(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match first.as_str() {
        "crate" => {
            base.clear();
            rest = &path[1..];
        }
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

fn parse(path: &Path) -> SourceFile {
    let src = src_dir();
    let rel = path.strip_prefix(&src).expect("under src");
    let mut module: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let file_name = module.pop().unwrap_or_default();
    if file_name != "mod" && file_name != "lib" {
        module.push(file_name);
    }
    let text = fs::read_to_string(path).expect("read source");
    let code = code_of(&text);

    let mut reexports = BTreeMap::new();
    let mut uses = Vec::new();
    // The code with its use declarations blanked, for the inline paths.
    let mut body = code.clone();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let is_decl = at == 0 || !prev_ident(rest.as_bytes(), at);
        let Some(end) = rest[at..].find(';') else {
            break;
        };
        let tree = &rest[at + 4..at + end];
        let offset = code.len() - rest.len() + at;
        rest = &rest[at + end + 1..];
        if !is_decl || tree.contains('(') {
            continue;
        }
        body.replace_range(offset..offset + end, &" ".repeat(end));
        let public = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        let mut expanded = Vec::new();
        expand_use_tree(tree, &[], &mut expanded);
        for (p, name) in expanded {
            let Some(abs) = absolute(&p, &module) else {
                continue;
            };
            if public {
                reexports.insert(name, abs);
            } else {
                uses.push(abs);
            }
        }
    }
    // Paths written inline in the code: from the crate root or relative to
    // the module (`crate::x`, `super::x`, `self::x`), and through a child
    // module's name (`parse::rules(..)` in `rules/mod.rs`), kept when that
    // names a child module (checked once every file is known).
    let code = body;
    for (at, _) in code.match_indices("::") {
        let b = code.as_bytes();
        let mut start = at;
        while start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            start -= 1;
        }
        if start == at || (start >= 2 && &code[start - 2..start] == "::") {
            continue;
        }
        let head = &code[start..at];
        if matches!(head, "crate" | "super" | "self") || head.starts_with(char::is_uppercase) {
            continue;
        }
        let path: String = code[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut abs = module.clone();
        abs.extend(segments(&path));
        uses.push(abs);
    }
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if at > 0 && (prev_ident(code.as_bytes(), at) || code.as_bytes()[at - 1] == b':') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if let Some(abs) = absolute(&segments(&path), &module) {
                uses.push(abs);
            }
        }
    }
    SourceFile {
        path: rel.to_path_buf(),
        module,
        reexports,
        uses,
    }
}

struct Crate {
    files: Vec<SourceFile>,
    /// Module path → index of the file that is that module.
    modules: HashMap<Vec<String>, usize>,
}

impl Crate {
    fn load() -> Crate {
        let mut paths = Vec::new();
        rust_files(&src_dir(), &mut paths);
        // The binary is a separate crate that uses the library from outside.
        paths.retain(|p| !p.ends_with("main.rs"));
        let mut files: Vec<SourceFile> = paths.iter().map(|p| parse(p)).collect();
        let modules: HashMap<Vec<String>, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        // A path relative to a module must name one of its child modules.
        for f in &mut files {
            let own = f.module.len();
            let known = |p: &Vec<String>| {
                !p.starts_with(&f.module) || p.len() <= own || modules.contains_key(&p[..own + 1])
            };
            f.uses.retain(known);
            f.reexports.retain(|_, p| known(p));
        }
        Crate { files, modules }
    }

    /// The file defining the item `path` names (following re-exports); the
    /// module's own file for a path to a module.
    fn resolve(&self, path: &[String], depth: usize) -> Option<usize> {
        if depth > 16 {
            return None;
        }
        // The longest prefix that is a module.
        let mut n = path.len();
        while n > 0 && !self.modules.contains_key(&path[..n]) {
            n -= 1;
        }
        let &file = self.modules.get(&path[..n])?;
        let Some(next) = path.get(n) else {
            return Some(file);
        };
        let f = &self.files[file];
        if let Some(target) = f.reexports.get(next) {
            let mut p = target.clone();
            p.extend(path[n + 1..].iter().cloned());
            return self.resolve(&p, depth + 1).or(Some(file));
        }
        Some(file)
    }

    fn stage_of(&self, file: usize) -> Option<&str> {
        self.files[file].module.first().map(String::as_str)
    }

    /// Edges file → file, without self-edges.
    fn edges(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (i, f) in self.files.iter().enumerate() {
            for u in &f.uses {
                if let Some(j) = self.resolve(u, 0)
                    && j != i
                {
                    edges.entry(i).or_default().insert(j);
                }
            }
        }
        edges
    }
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(n: usize, edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a BTreeMap<usize, BTreeSet<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let succ: Vec<usize> = t
            .edges
            .get(&v)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for w in succ {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_stage_imports_from_a_later_stage() {
    let krate = Crate::load();
    let rank = |m: &str| STAGES.iter().position(|s| *s == m);
    let mut problems = Vec::new();
    for (i, f) in krate.files.iter().enumerate() {
        let Some(stage) = krate.stage_of(i) else {
            continue;
        };
        let Some(own) = rank(stage) else {
            problems.push(format!(
                "{}: top-level module {stage:?} is not in STAGES; place it in the data-path order",
                f.path.display()
            ));
            continue;
        };
        for u in &f.uses {
            let Some(j) = krate.resolve(u, 0) else {
                continue;
            };
            let Some(target) = krate.stage_of(j) else {
                continue;
            };
            if rank(target).is_some_and(|r| r > own) {
                problems.push(format!(
                    "{} ({stage}) imports {} from {} ({target}), a later stage",
                    f.path.display(),
                    u.join("::"),
                    krate.files[j].path.display()
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_two_files_depend_on_each_other() {
    let krate = Crate::load();
    let edges = krate.edges();
    let found = cycles(krate.files.len(), &edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let names: Vec<String> = c
                .iter()
                .map(|&i| krate.files[i].path.display().to_string())
                .collect();
            names.join(" <-> ")
        })
        .collect();
    assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
}

/// The checker itself: it resolves re-exports and sees the stage order and
/// cycles it is meant to catch (on made-up modules, so that a checker that
/// sees nothing cannot pass the two tests above).
#[test]
fn the_checker_finds_what_it_looks_for() {
    let mut expanded = Vec::new();
    expand_use_tree(
        "crate::proto::{self, http::{HttpEvent as E, Http}, norm::*}",
        &[],
        &mut expanded,
    );
    let paths: Vec<String> = expanded.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::proto",
            "crate::proto::http::HttpEvent",
            "crate::proto::http::Http",
            "crate::proto::norm"
        ]
    );
    assert_eq!(expanded[1].1, "E");

    let code = code_of(
        "// use crate::alert::X;\nlet s = \"crate::alert::Y\";\nuse super::z;\n#[cfg(test)]\nmod tests { use crate::cli::W; }\nfn f() {}",
    );
    assert!(!code.contains("alert") && !code.contains("cli"), "{code}");
    assert!(
        code.contains("use super::z;") && code.contains("fn f()"),
        "{code}"
    );

    assert_eq!(
        absolute(
            &segments("super::super::norm::Event"),
            &segments("proto::http::log")
        ),
        Some(segments("proto::norm::Event"))
    );

    // Three files in a cycle and one outside it.
    let edges: BTreeMap<usize, BTreeSet<usize>> = [
        (0, BTreeSet::from([1])),
        (1, BTreeSet::from([2])),
        (2, BTreeSet::from([0, 3])),
    ]
    .into_iter()
    .collect();
    assert_eq!(cycles(4, &edges), [vec![0, 1, 2]]);

    // The real crate: a path through a re-export lands on the defining file.
    let krate = Crate::load();
    let file = krate
        .resolve(&segments("proto::AppProto"), 0)
        .map(|i| krate.files[i].path.clone());
    assert_eq!(file, Some(PathBuf::from("proto/registry.rs")));
    let file = krate
        .resolve(&segments("proto::http::HttpEvent"), 0)
        .map(|i| krate.files[i].path.clone());
    assert_eq!(file, Some(PathBuf::from("proto/http/events.rs")));
    assert!(krate.edges().values().map(BTreeSet::len).sum::<usize>() > 100);
}
