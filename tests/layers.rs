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
    ("doctor", 12),
];

fn rank(module: &str) -> u8 {
    LAYERS.iter().find(|(name, _)| *name == module).map(|(_, rank)| *rank).unwrap_or_else(|| {
        panic!("dr-core module {module} is not in the layer table (tests/layers.rs, docs/architecture.md)")
    })
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path, root: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, root, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src").to_string_lossy().to_string();
            let module = relative.split(['/', '.']).next().unwrap_or_default().to_string();
            if module != "lib" {
                found.push((module, std::fs::read_to_string(&path).expect("source")));
            }
        }
    }
}

#[test]
fn dr_core_imports_point_down_only() {
    let root = dr_tests::repo_root().join("crates/dr-core/src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
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
