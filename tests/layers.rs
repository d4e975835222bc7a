//! dr-core's layers (docs/architecture.md): every module imports only modules listed before it,
//! and the behaviours (runbook, restore, trigger) never import each other. Checked on the source,
//! so that a new `use` that points the wrong way fails the suite. No emulator needed.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;

/// dr-core's top-level modules, bottom layer first; modules of equal rank may not import each
/// other.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("time", 1),
    ("plan", 2),
    ("aws", 3),
    ("notify", 4),
    ("run", 4),
    ("store", 5),
    ("rpo", 6),
    ("readiness", 7),
    ("report", 8),
    ("runbook", 9),
    ("restore", 9),
    // The trigger prepares the compute with the runbook's steps while it confirms.
    ("trigger", 10),
    ("game_day", 11),
    ("reconcile", 11),
    // Moves started by hand: one plan, or a region evacuated plan by plan.
    ("manual", 11),
    ("doctor", 12),
    ("posture", 12),
];

fn rank(module: &str) -> u8 {
    LAYERS.iter().find(|(name, _)| *name == module).map(|(_, rank)| *rank).unwrap_or_else(|| {
        panic!("dr-core module {module} is not in the layer table (tests/layers.rs, docs/architecture.md)")
    })
}

/// Every `.rs` file under `root` but the crate root, with the top-level module it belongs to.
fn sources(root: &Path) -> Vec<(String, String)> {
    let mut modules = Vec::new();
    file_modules(root, root, &mut modules);
    modules.into_iter().map(|(module, text)| (module[0].clone(), text)).collect()
}

#[test]
fn dr_core_imports_point_down_only() {
    let root = dr_tests::repo_root().join("crates/dr-core/src");
    let files = sources(&root);
    let mut wrong = Vec::new();
    for (module, text) in &files {
        let own = rank(module);
        for (at, _) in text.match_indices("crate::") {
            let used: String =
                text[at + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if used.is_empty() || used == *module || used.chars().next().is_some_and(char::is_uppercase) {
                continue;
            }
            if rank(&used) >= own {
                wrong.push(format!("{module} (layer {own}) uses {used} (layer {})", rank(&used)));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports that point up or sideways:\n{}", wrong.join("\n"));
}

#[test]
fn the_product_links_no_emulator_code() {
    for manifest in ["crates/dr-core/Cargo.toml", "crates/drctl/Cargo.toml", "functions/Cargo.toml"] {
        let text = std::fs::read_to_string(dr_tests::repo_root().join(manifest)).expect("manifest");
        assert!(!text.contains("dr-emulator"), "{manifest} depends on the emulator");
        assert!(!text.contains("[dev-dependencies]"), "{manifest}: dev-dependencies change feature unification");
    }
}

/// One TLS stack, rustls on ring (`dr_core::aws::tls`): aws-lc's C library, the SDK's default,
/// adds about 0.4 MB to every function's zip (docs/benchmarks.md, "Packages and cold starts"). A crate that
/// turns an SDK crate's `default-https-client` (or reqwest's `rustls`) back on brings it into
/// Cargo.lock, which lists what any member of the workspace can build.
#[test]
fn no_crate_links_aws_lc() {
    let lock = std::fs::read_to_string(dr_tests::repo_root().join("Cargo.lock")).expect("Cargo.lock");
    for package in ["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys"] {
        assert!(
            !lock.contains(&format!("name = \"{package}\"")),
            "Cargo.lock has {package}: an SDK crate's default-https-client or reqwest's rustls is on"
        );
    }
}

/// The file modules under `root` (`a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs`,
/// the crate root, left out) with their source.
fn file_modules(dir: &Path, root: &Path, found: &mut Vec<(Vec<String>, String)>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            file_modules(&path, root, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src").with_extension("");
            let mut module: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
            if module.last().is_some_and(|last| last == "mod") {
                module.pop();
            }
            if module != ["lib"] && module != ["main"] && !module.is_empty() {
                found.push((module, std::fs::read_to_string(&path).expect("source")));
            }
        }
    }
}

/// The modules `text` (the source of `module`) names by path, `crate::a::b...` and
/// `super::b...` (a `{...}` list item by item), each resolved to the longest known module it
/// starts with.
fn named_modules(module: &[String], text: &str, known: &[Vec<String>]) -> Vec<Vec<String>> {
    let words = |rest: &str| -> Vec<String> {
        rest.split("::")
            .map(|part| part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>())
            .take_while(|part| !part.is_empty())
            .collect()
    };
    let resolve = |base: &[String], rest: &str| -> Vec<Vec<String>> {
        let mut prefix = base.to_vec();
        let head = words(rest);
        prefix.extend(head.iter().cloned());
        // `a::b::{c, d::e}`: each item after the prefix.
        let after = rest.splitn(head.len() + 1, "::").nth(head.len()).unwrap_or_default();
        let items: Vec<Vec<String>> = match after.strip_prefix('{') {
            Some(list) => list
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .map(|item| prefix.iter().cloned().chain(words(item.trim())).collect())
                .collect(),
            None => vec![prefix],
        };
        items
            .into_iter()
            .filter_map(|path| (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| known.contains(p)))
            .collect()
    };
    let mut named = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        named.extend(resolve(&[], &text[at + "crate::".len()..]));
    }
    // `super` is the module's parent, whether the module is a file or a directory's `mod.rs`.
    let parent = &module[..module.len() - 1];
    for (at, _) in text.match_indices("super::") {
        if text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        named.extend(resolve(parent, &text[at + "super::".len()..]));
    }
    named
}

/// A cycle among a crate's file modules, if any: modules that import each other (directly or
/// through others), a parent module and its own children aside (a `mod.rs` declares and
/// dispatches to its children, which use what it shares).
fn module_cycle(root: &Path) -> Option<Vec<String>> {
    let mut modules = Vec::new();
    file_modules(root, root, &mut modules);
    let known: Vec<Vec<String>> = modules.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<Vec<String>>> =
        std::collections::BTreeMap::new();
    for (module, text) in &modules {
        // Test modules may reach anywhere, and a comment's link imports nothing.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let text: String =
            code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let text = text.as_str();
        for named in named_modules(module, text, &known) {
            let related = named.starts_with(module) || module.starts_with(&named);
            if !related {
                edges.entry(module.clone()).or_default().insert(named);
            }
        }
    }
    fn visit(
        node: &Vec<String>,
        edges: &std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut std::collections::BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle: Vec<String> = path[start..].iter().map(|n| n.join("::")).collect();
            cycle.push(node.join("::"));
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    known.iter().find_map(|node| visit(node, &edges, &mut Vec::new(), &mut done))
}

/// No two modules of dr-core, and no two of drctl, import each other (directly or through
/// others): each can be read, changed and tested after the ones it uses.
#[test]
fn no_module_cycle_in_dr_core_or_drctl() {
    for krate in ["crates/dr-core/src", "crates/drctl/src", "functions/src"] {
        let cycle = module_cycle(&dr_tests::repo_root().join(krate));
        assert!(cycle.is_none(), "{krate}: modules that import each other: {}", cycle.unwrap_or_default().join(" -> "));
    }
}

/// `lib.rs` and docs/architecture.md quote the numbering this file enforces ([`LAYERS`]).
#[test]
fn lib_rs_and_the_architecture_doc_quote_the_enforced_layer_numbers() {
    let lib = std::fs::read_to_string(dr_tests::repo_root().join("crates/dr-core/src/lib.rs")).expect("lib.rs");
    let doc = std::fs::read_to_string(dr_tests::repo_root().join("docs/architecture.md")).expect("architecture.md");
    for (module, rank) in LAYERS {
        let in_lib = lib
            .lines()
            .any(|line| line.starts_with(&format!("//! {rank}. ")) && line.contains(&format!("[`{module}`]")));
        assert!(in_lib, "lib.rs lists [`{module}`] under `//! {rank}. `");
        let in_doc = doc.lines().any(|line| {
            line.starts_with(&format!("| {rank} | "))
                && line.split(" | ").nth(1).is_some_and(|m| m.contains(&format!("`{module}`")))
        });
        assert!(in_doc, "docs/architecture.md's table has `{module}` in layer {rank}");
    }
}

/// The string literals of a Rust source outside comments, each with the line it starts on,
/// leaving out `#[cfg(test)]` items. Enough of Rust's lexer for dr-core: line and (nested) block
/// comments, strings with escapes, raw strings, char literals told from lifetimes.
fn string_literals_outside_tests(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let starts = |at: usize, prefix: &str| prefix.chars().enumerate().all(|(i, c)| chars.get(at + i) == Some(&c));
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    // Whether a string literal opens at `at` (`"`, `r"`, `r#"`, `br"`): raw or not, its `#`s.
    let string_at = |at: usize| -> Option<(bool, usize)> {
        let before = at.checked_sub(1).map(|i| chars[i]);
        if chars[at] == '"' {
            return Some((false, 0));
        }
        let raw = chars[at] == 'r' && before.is_none_or(|b| !is_ident(b) || b == 'b');
        let hashes = chars.iter().skip(at + 1).take_while(|&&h| h == '#').count();
        (raw && chars.get(at + 1 + hashes) == Some(&'"')).then_some((true, hashes))
    };
    let (mut at, mut line, mut found) = (0, 1, Vec::new());
    // The brace depth, and the depth of the `#[cfg(test)]` item being left out.
    let (mut depth, mut test_item_at, mut test_item_next) = (0usize, None::<usize>, false);
    while at < chars.len() {
        let c = chars[at];
        if starts(at, "//") {
            while at < chars.len() && chars[at] != '\n' {
                at += 1;
            }
        } else if starts(at, "/*") {
            let mut nested = 0;
            loop {
                if starts(at, "/*") {
                    (nested, at) = (nested + 1, at + 2);
                } else if starts(at, "*/") {
                    (nested, at) = (nested - 1, at + 2);
                } else {
                    line += usize::from(chars.get(at) == Some(&'\n'));
                    at += 1;
                }
                if nested == 0 || at >= chars.len() {
                    break;
                }
            }
        } else if let Some((raw, hashes)) = string_at(at) {
            let closing: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let (first_line, mut literal) = (line, String::new());
            at += usize::from(raw) + hashes + 1;
            while at < chars.len() && !starts(at, &closing) {
                // An escaped character, the quote included, belongs to the literal.
                let length = if chars[at] == '\\' && !raw { 2 } else { 1 };
                for &inside in chars.iter().skip(at).take(length) {
                    line += usize::from(inside == '\n');
                    literal.push(inside);
                }
                at += length;
            }
            at += closing.len();
            if test_item_at.is_none() {
                found.push((first_line, literal));
            }
        } else if c == '\'' {
            // 'x' and '\n' are chars; 'a followed by no quote is a lifetime.
            at += match chars.get(at + 1) {
                Some('\\') => chars.iter().skip(at + 3).position(|&q| q == '\'').map_or(1, |end| end + 4),
                Some(_) if chars.get(at + 2) == Some(&'\'') => 3,
                _ => 1,
            };
        } else {
            if starts(at, "#[cfg(test)]") && test_item_at.is_none() {
                test_item_next = true;
            }
            match c {
                '\n' => line += 1,
                // `#[cfg(test)] use ...;`: an item without a body.
                ';' => test_item_next = false,
                '{' => {
                    if test_item_next {
                        (test_item_at, test_item_next) = (Some(depth), false);
                    }
                    depth += 1;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if test_item_at == Some(depth) {
                        test_item_at = None;
                    }
                }
                _ => {}
            }
            at += 1;
        }
    }
    found
}

/// Whether a literal names the example plan's regions: "Paris" or "Ireland" as a word, in any
/// case (`PARIS_DB_URL` too, "a comparison" not).
fn names_a_region(literal: &str) -> bool {
    let lower = literal.to_lowercase();
    ["paris", "ireland"].iter().any(|name| {
        lower.match_indices(name).any(|(at, _)| {
            let before = lower[..at].chars().next_back();
            let after = lower[at + name.len()..].chars().next();
            !before.is_some_and(char::is_alphabetic) && !after.is_some_and(char::is_alphabetic)
        })
    })
}

/// dr-core says what the plan says: its reports, notices, errors and checks call a region by the
/// plan's name for it (`[region_names]`, else its code: `Plan::region_name`), in the direction of
/// the run, never by the example plan's "Paris" and "Ireland". Comments may use the example to
/// explain. `#[cfg(test)]` modules are left out: their fixture is the example plan
/// Fields of reports written before the plan named its regions, which dr-core still reads
/// (a serde alias): their names are the stored reports', not a text anyone is told.
const OLD_FIELD_NAMES: &[&str] = &["ireland_served_seconds"];

/// (`plans/paris-ireland.toml`), and the texts they expect carry that plan's own names.
/// [`OLD_FIELD_NAMES`] are no text: names of report fields written before, still read.
#[test]
fn dr_core_names_no_region_in_its_texts() {
    let root = dr_tests::repo_root().join("crates/dr-core/src");
    let files = sources(&root);
    let mut named = Vec::new();
    for (module, text) in &files {
        for (line, literal) in string_literals_outside_tests(text) {
            if names_a_region(&literal) && !OLD_FIELD_NAMES.contains(&literal.as_str()) {
                named.push(format!("{module}, line {line}: {literal:?}"));
            }
        }
    }
    assert!(named.is_empty(), "texts that call a region otherwise than the plan does:\n{}", named.join("\n"));

    // The scanner: a literal is found, a comment and a test module are not.
    let sample = "// Paris\nfn f<'a>() { g(\"to \\\"Ireland\\\"\", r#\"Paris\"#, '{', '\\'') }\n\
                  #[cfg(test)]\nmod tests { \"Paris\" }\nfn h() { \"after\" }\n";
    let literals: Vec<(usize, String)> = string_literals_outside_tests(sample);
    let expected = [(2, "to \\\"Ireland\\\"".to_string()), (2, "Paris".to_string()), (5, "after".to_string())];
    assert_eq!(literals, expected);
    assert!(names_a_region("PARIS_DB_URL") && names_a_region("in-ireland") && !names_a_region("a comparison"));
}
