//! Reports as documents: a few kinds of block (headings, text, facts, tables, code, charts)
//! rendered as Markdown and as one self-contained HTML file (inline CSS, charts as inline
//! SVG; in Markdown, as SVG data URIs). Text is plain text everywhere — every renderer escapes
//! it for the place it lands, so alert labels and playbook output cannot add markup.

pub mod cron;
pub mod period;
pub mod svg;
pub mod time;

use std::fmt::Write as _;

use base64::Engine as _;

pub use svg::{Chart, Line, Marker, MarkerKind};

/// One block of a document.
#[derive(Debug, Clone)]
pub enum Block {
    /// Level 2 or 3.
    Heading(u8, String),
    Paragraph(String),
    /// `name: value` lines.
    Facts(Vec<(String, String)>),
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Bullets(Vec<String>),
    /// Preformatted text (evidence, JSON).
    Code(String),
    Chart(Chart),
}

/// A report.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(title: impl Into<String>) -> Doc {
        Doc {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub fn push(&mut self, b: Block) -> &mut Doc {
        self.blocks.push(b);
        self
    }

    pub fn heading(&mut self, text: impl Into<String>) -> &mut Doc {
        self.push(Block::Heading(2, text.into()))
    }

    pub fn subheading(&mut self, text: impl Into<String>) -> &mut Doc {
        self.push(Block::Heading(3, text.into()))
    }

    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Doc {
        self.push(Block::Paragraph(text.into()))
    }

    /// The document as Markdown (CommonMark with GitHub tables).
    pub fn markdown(&self) -> String {
        let mut s = format!("# {}\n\n", md_escape(&self.title));
        for b in &self.blocks {
            match b {
                Block::Heading(level, t) => {
                    let _ = writeln!(s, "{} {}\n", "#".repeat(*level as usize), md_escape(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(s, "{}\n", md_escape(t));
                }
                Block::Facts(facts) => {
                    for (k, v) in facts {
                        let _ = writeln!(s, "- **{}:** {}", md_escape(k), md_escape(v));
                    }
                    s.push('\n');
                }
                Block::Table { headers, rows } => md_table(&mut s, headers, rows),
                Block::Bullets(items) => {
                    for i in items {
                        let _ = writeln!(s, "- {}", md_escape(i));
                    }
                    s.push('\n');
                }
                Block::Code(t) => {
                    let fence = "`".repeat(longest_backtick_run(t).max(2) + 1);
                    let _ = writeln!(s, "{fence}\n{t}\n{fence}\n");
                }
                Block::Chart(c) => {
                    let data = base64::engine::general_purpose::STANDARD.encode(svg::render(c));
                    let _ = writeln!(
                        s,
                        "![{}](data:image/svg+xml;base64,{data})\n",
                        md_escape(&c.title)
                    );
                }
            }
        }
        s
    }

    /// The document as one HTML file: no external style, script, font or image.
    pub fn html(&self) -> String {
        let e = svg::xml_escape;
        let mut s = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body><h1>{}</h1>\n",
            e(&self.title),
            e(&self.title)
        );
        for b in &self.blocks {
            match b {
                Block::Heading(level, t) => {
                    let _ = writeln!(s, "<h{level}>{}</h{level}>", e(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(s, "<p>{}</p>", e(t));
                }
                Block::Facts(facts) => {
                    s.push_str("<dl>");
                    for (k, v) in facts {
                        let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", e(k), e(v));
                    }
                    s.push_str("</dl>\n");
                }
                Block::Table { headers, rows } => {
                    s.push_str("<table><thead><tr>");
                    for h in headers {
                        let _ = write!(s, "<th>{}</th>", e(h));
                    }
                    s.push_str("</tr></thead><tbody>");
                    for r in rows {
                        s.push_str("<tr>");
                        for c in r {
                            let _ = write!(s, "<td>{}</td>", e(c));
                        }
                        s.push_str("</tr>");
                    }
                    s.push_str("</tbody></table>\n");
                }
                Block::Bullets(items) => {
                    s.push_str("<ul>");
                    for i in items {
                        let _ = write!(s, "<li>{}</li>", e(i));
                    }
                    s.push_str("</ul>\n");
                }
                Block::Code(t) => {
                    let _ = writeln!(s, "<pre>{}</pre>", e(t));
                }
                Block::Chart(c) => {
                    let _ = writeln!(s, "<figure>{}</figure>", svg::render(c));
                }
            }
        }
        s.push_str("</body></html>\n");
        s
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}th{background:#f4f4f4}pre{background:#f6f6f6;padding:.5rem;overflow-x:auto;font-size:.8rem}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:bold}dd{margin:0}figure{margin:1rem 0}";

/// Plain text as Markdown text: characters that would start markup are backslash-escaped,
/// line breaks become spaces (a paragraph or cell stays one).
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            // `#` starts a heading, `-` `+` a list item, only first on a line.
            '#' | '-' | '+' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn md_table(s: &mut String, headers: &[String], rows: &[Vec<String>]) {
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| md_escape(c)).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    s.push_str(&line(headers));
    let _ = writeln!(s, "|{}", "---|".repeat(headers.len()));
    for r in rows {
        s.push_str(&line(r));
    }
    s.push('\n');
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests;
