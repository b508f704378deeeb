//! No hand-typed figure: every table of measurements in README.md and
//! docs/*.md is a block speedbench generated from a committed results file,
//! between a marker that names the command and an end marker:
//!
//! ```text
//! <!-- speedbench report docs/results/quick.json --format md --headline -->
//! ...what that command prints...
//! <!-- end speedbench -->
//! ```
//!
//! This test runs each command again (from the repository's root, 100
//! columns for terminal tables, which go in a `text` fence) and fails on
//! any difference. `UPDATE_DOCS=1 cargo test --release --test docs`
//! rewrites the blocks.

mod common;

use std::path::{Path, PathBuf};

const OPEN: &str = "<!-- speedbench ";
const CLOSE: &str = "<!-- end speedbench -->";

/// README.md and every markdown page under docs/.
fn pages() -> Vec<PathBuf> {
    let root = common::repo();
    let mut pages = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
    }
    pages.sort();
    pages
}

/// What a marker's command prints now, as the block holds it.
fn generate(args: &[&str]) -> String {
    let o = common::speedbench_in_env(common::repo(), args, &[("COLUMNS", "100")]);
    assert_eq!(o.code, 0, "speedbench {}: {}", args.join(" "), o.stderr);
    let text = o.stdout.trim_end();
    let md = args.windows(2).any(|w| w == ["--format", "md"]);
    if md {
        format!("{text}\n")
    } else {
        format!("```text\n{text}\n```\n")
    }
}

/// `text` with every block generated again, and the commands whose blocks
/// changed; a marker without an end is an error.
fn regenerate(text: &str, page: &Path) -> (String, Vec<String>) {
    let (mut out, mut changed) = (String::new(), Vec::new());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let line_end = rest[at..]
            .find("-->")
            .map(|i| at + i + 3)
            .unwrap_or_else(|| panic!("{}: a '{OPEN}' marker without '-->'", page.display()));
        let command = rest[at + OPEN.len()..line_end - 3].trim();
        let body_start = line_end + 1;
        let close = rest[body_start..]
            .find(CLOSE)
            .unwrap_or_else(|| panic!("{}: '{command}' has no '{CLOSE}'", page.display()));
        let old = &rest[body_start..body_start + close];
        let args: Vec<&str> = command.split_whitespace().collect();
        let new = generate(&args);
        if new != old {
            changed.push(command.to_string());
        }
        out.push_str(&rest[..body_start]);
        out.push_str(&new);
        rest = &rest[body_start + close..];
    }
    out.push_str(rest);
    (out, changed)
}

#[test]
fn every_generated_block_is_what_speedbench_prints_now() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    let mut blocks = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        blocks += text.matches(OPEN).count();
        let (new, changed) = regenerate(&text, &page);
        if update && new != text {
            std::fs::write(&page, new).unwrap();
        }
        let rel = page
            .strip_prefix(common::repo())
            .unwrap()
            .display()
            .to_string();
        stale.extend(
            changed
                .into_iter()
                .map(|c| format!("{rel}: speedbench {c}")),
        );
    }
    assert!(blocks > 0, "no generated block in README.md or docs/");
    assert!(
        update || stale.is_empty(),
        "blocks differ from what speedbench prints now (UPDATE_DOCS=1 regenerates them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn a_block_is_found_replaced_and_its_change_named() {
    let page = Path::new("x.md");
    let text = format!("intro\n{OPEN}models --format md -->\nold\n{CLOSE}\nafter\n");
    let (new, changed) = regenerate(&text, page);
    assert_eq!(changed, ["models --format md"]);
    assert!(new.starts_with(&format!("intro\n{OPEN}models --format md -->\n")));
    assert!(new.ends_with(&format!("\n{CLOSE}\nafter\n")));
    assert!(new.contains("resnet50"), "{new}");
    // generated again, nothing changes
    let (again, changed) = regenerate(&new, page);
    assert_eq!((again, changed), (new, vec![]));
}
