//! Plain-text tables for the CLI: each column as wide as its widest cell, so that columns line
//! up whatever the names are (Chinese characters take two columns on a terminal).

/// A table: a header row, then rows of the same number of cells.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Space between two columns.
const GAP: &str = "  ";

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The lines, without trailing spaces.
    pub fn lines(&self) -> Vec<String> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| {
                let mut line = String::new();
                for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        line.push_str(GAP);
                    }
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', w - width(cell)));
                }
                line.trim_end().to_owned()
            })
            .collect()
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        for line in self.lines() {
            println!("{line}");
        }
    }
}

/// Columns `text` takes on a terminal: two for East Asian wide characters, one otherwise.
pub fn width(text: &str) -> usize {
    text.chars().map(|c| if wide(c) { 2 } else { 1 }).sum()
}

/// The East Asian wide and full-width blocks (Hangul, CJK, kana, full-width forms).
fn wide(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_start_at_the_same_place_on_every_line() {
        let mut t = Table::new(&["id", "name", "skills"]);
        t.row(vec![
            "patrol-01".into(),
            "湖滨 1".into(),
            "first_aid".into(),
        ]);
        t.row(vec!["a".into(), "Wang".into(), String::new()]);
        let lines = t.lines();
        assert_eq!(lines[0], "id         name    skills");
        assert_eq!(lines[1], "patrol-01  湖滨 1  first_aid");
        assert_eq!(lines[2], "a          Wang");
    }
}
