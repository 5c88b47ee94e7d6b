//! The engine × case matrix: what the suite prints and writes as markdown.

use std::path::Path;

use crate::suite::Verdict;

/// Verdicts of every case on every engine, in run order.
#[derive(Debug, Default)]
pub struct Matrix {
    engines: Vec<String>,
    cases: Vec<&'static str>,
    cells: Vec<(String, &'static str, Verdict)>,
}

impl Matrix {
    /// Adds one engine's results.
    pub fn add(&mut self, engine: &str, results: Vec<(&'static str, Verdict)>) {
        self.engines.push(engine.to_owned());
        for (case, verdict) in results {
            if !self.cases.contains(&case) {
                self.cases.push(case);
            }
            self.cells.push((engine.to_owned(), case, verdict));
        }
    }

    fn cell(&self, engine: &str, case: &str) -> Option<&Verdict> {
        self.cells
            .iter()
            .find(|(e, c, _)| e == engine && *c == case)
            .map(|(_, _, v)| v)
    }

    /// A markdown table, cases down and engines across, then the counts per engine.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "| case | {} |\n|---|{}\n",
            self.engines.join(" | "),
            "---|".repeat(self.engines.len())
        );
        for case in &self.cases {
            let cells: Vec<String> = self
                .engines
                .iter()
                .map(|engine| match self.cell(engine, case) {
                    Some(Verdict::Pass) => "pass".to_owned(),
                    Some(Verdict::Fail(why)) => format!("**FAIL**: {}", table_text(why, 100)),
                    Some(Verdict::Unsupported(why)) => {
                        format!("unsupported: {}", table_text(why, 200))
                    }
                    None => "-".to_owned(),
                })
                .collect();
            out.push_str(&format!("| {case} | {} |\n", cells.join(" | ")));
        }
        out.push('\n');
        for engine in &self.engines {
            let count = |f: fn(&Verdict) -> bool| {
                self.cells
                    .iter()
                    .filter(|(e, _, v)| e == engine && f(v))
                    .count()
            };
            out.push_str(&format!(
                "{engine}: {} pass, {} fail, {} unsupported\n",
                count(|v| matches!(v, Verdict::Pass)),
                count(|v| matches!(v, Verdict::Fail(_))),
                count(|v| matches!(v, Verdict::Unsupported(_))),
            ));
        }
        out
    }

    /// Writes the markdown table to `path`, creating its directory.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_markdown())
    }
}

/// Marks where docs/conformance.md holds the generated matrix.
pub const MATRIX_START: &str = "<!-- conformance-matrix:start -->";
/// Ends the generated matrix in docs/conformance.md.
pub const MATRIX_END: &str = "<!-- conformance-matrix:end -->";

/// `document` with the text between the matrix markers replaced by `table`, or `None`
/// when the markers are missing.
pub fn splice_matrix(document: &str, table: &str) -> Option<String> {
    let start = document.find(MATRIX_START)? + MATRIX_START.len();
    let end = start + document[start..].find(MATRIX_END)?;
    Some(format!(
        "{}\n{table}{}",
        &document[..start],
        &document[end..]
    ))
}

/// One line, no table separators, at most `max` characters.
fn table_text(text: &str, max: usize) -> String {
    let flat: String = text.replace('|', "/").replace('\n', " ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_between_the_markers_only() {
        let doc = format!("intro\n{MATRIX_START}\nold\n{MATRIX_END}\noutro\n");
        let new = splice_matrix(&doc, "new\n").unwrap();
        assert_eq!(
            new,
            format!("intro\n{MATRIX_START}\nnew\n{MATRIX_END}\noutro\n")
        );
        assert_eq!(splice_matrix("no markers", "x"), None);
    }

    #[test]
    fn renders_cells_and_counts() {
        let mut m = Matrix::default();
        m.add(
            "a",
            vec![
                ("one", Verdict::Pass),
                ("two", Verdict::Fail("x|y\nz".into())),
            ],
        );
        m.add("b", vec![("one", Verdict::Unsupported("no".into()))]);
        let md = m.to_markdown();
        assert!(md.starts_with("| case | a | b |\n|---|---|---|\n"), "{md}");
        assert!(md.contains("| one | pass | unsupported: no |\n"), "{md}");
        assert!(md.contains("| two | **FAIL**: x/y z | - |\n"), "{md}");
        assert!(md.contains("a: 1 pass, 1 fail, 0 unsupported\n"), "{md}");
    }
}
