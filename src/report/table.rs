//! Grids as terminal tables (tabled) or markdown.

use tabled::builder::Builder;
use tabled::settings::Style;

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
}
