//! Small tables of rows (models, verify) in any text format.

use anyhow::Result;
use serde::Serialize;

/// The text formats of a small table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Md,
    Json,
}

/// Rows of a small table in any text format.
pub fn render_rows<T: Serialize + tabled::Tabled>(rows: &[T], format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(rows)?,
        Format::Table => tabled::Table::new(rows)
            .with(tabled::settings::Style::rounded())
            .to_string(),
        Format::Md => tabled::Table::new(rows)
            .with(tabled::settings::Style::markdown())
            .to_string(),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in rows {
                w.serialize(r)?;
            }
            String::from_utf8(w.into_inner()?)?
        }
    })
}
