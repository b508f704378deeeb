//! Grids as terminal tables (tabled) or markdown.

use tabled::builder::Builder;
use tabled::settings::peaker::PriorityMax;
use tabled::settings::{Style, Width};

use super::grid::Grid;

fn builder(g: &Grid) -> Builder {
    let mut b = Builder::default();
    b.push_record(g.header.clone());
    for r in &g.rows {
        b.push_record(r.clone());
    }
    b
}

pub fn terminal(grids: &[Grid]) -> String {
    let mut out = String::new();
    for g in grids {
        out.push_str(&format!("{}\n", g.title));
        out.push_str(&builder(g).build().with(Style::rounded()).to_string());
        out.push('\n');
        for n in &g.notes {
            out.push_str(&format!("{n}\n"));
        }
        out.push('\n');
    }
    out
}

/// `g` less the columns whose headers are named in `names`.
pub fn without(g: &Grid, names: &[&str]) -> Grid {
    let keep: Vec<usize> = (0..g.header.len())
        .filter(|&i| !names.contains(&g.header[i].as_str()))
        .collect();
    let pick = |r: &Vec<String>| keep.iter().map(|&i| r[i].clone()).collect();
    Grid {
        title: g.title.clone(),
        header: pick(&g.header),
        rows: g.rows.iter().map(pick).collect(),
        notes: g.notes.clone(),
    }
}

/// How many columns `g`'s table takes in a terminal, borders included.
pub fn terminal_width(g: &Grid) -> usize {
    builder(g).build().with(Style::rounded()).total_width()
}

/// Grids as terminal tables no line of which is wider than `width`: a
/// table still too wide has its widest cells cut short (ending in "…"),
/// never wrapped; titles and notes are wrapped at spaces.
pub fn fitted(grids: &[Grid], width: usize) -> String {
    let mut out = String::new();
    for g in grids {
        out.push_str(&wrap(&g.title, width));
        let mut t = builder(g).build();
        t.with(Style::rounded());
        if t.total_width() > width {
            t.with(
                Width::truncate(width)
                    .suffix("…")
                    .priority(PriorityMax::right()),
            );
        }
        for line in t.to_string().lines() {
            // narrower than the borders and padding alone: cut the line
            out.extend(line.chars().take(width));
            out.push('\n');
        }
        for n in &g.notes {
            out.push_str(&wrap(n, width));
        }
        out.push('\n');
    }
    out
}

/// `text` broken at spaces into lines of at most `width` characters, each
/// ending in a newline; a word longer than `width` (a path) stays whole.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

pub fn markdown(grids: &[Grid]) -> String {
    let mut out = String::new();
    for g in grids {
        out.push_str(&format!("### {}\n\n", g.title));
        out.push_str(&builder(g).build().with(Style::markdown()).to_string());
        out.push_str("\n\n");
        for n in &g.notes {
            out.push_str(&format!("{n}\n\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_title_header_and_notes() {
        let g = Grid {
            title: "T".into(),
            header: vec!["a".into(), "b".into()],
            rows: vec![vec!["1".into(), "2".into()]],
            notes: vec!["n".into()],
        };
        let md = markdown(&[g]);
        assert!(md.starts_with("### T\n\n| a | b |"), "{md}");
        assert!(md.contains("| 1 | 2 |"));
        assert!(md.ends_with("n\n\n"));
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_keeps_long_words() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc\n");
        assert_eq!(wrap("aa bb cc", 80), "aa bb cc\n");
        assert_eq!(wrap("a /a/long/path b", 4), "a\n/a/long/path\nb\n");
        assert_eq!(wrap("", 10), "\n");
    }

    #[test]
    fn columns_are_left_out_by_name_and_tables_fit() {
        let g = Grid {
            title: "a title that is long".into(),
            header: vec!["a".into(), "b".into(), "c".into()],
            rows: vec![vec!["1".into(), "a long value here".into(), "3".into()]],
            notes: vec!["one note".into()],
        };
        let less = without(&g, &["b", "nothing"]);
        assert_eq!(less.header, ["a", "c"]);
        assert_eq!(less.rows, [["1", "3"]]);
        assert_eq!(terminal_width(&less), 9);
        let text = fitted(std::slice::from_ref(&g), 16);
        assert!(text.lines().all(|l| l.chars().count() <= 16), "{text}");
        assert!(text.contains('…'), "{text}");
        assert!(text.starts_with("a title that is\nlong\n"), "{text}");
        // wide enough: as the terminal renderer draws it
        assert_eq!(fitted(std::slice::from_ref(&g), 200), terminal(&[g]));
    }
}
