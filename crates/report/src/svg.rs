//! Time-series charts as standalone SVG: lines (gaps where a series has no sample), an
//! optional threshold, and markers for what happened (the fault, the alert, the repair). Every
//! piece of text — series names come from labels, from outside — is escaped as it is written.

use std::fmt::Write as _;

use crate::time::clock_label;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    /// (Unix ms, value); NaN or a jump longer than three steps breaks the line.
    pub points: Vec<(i64, f64)>,
}

/// What a marker marks; each kind has its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    Fault,
    Alert,
    Repair,
    Verified,
    Resolved,
}

impl MarkerKind {
    fn colour(self) -> &'static str {
        match self {
            MarkerKind::Fault => "#d62728",
            MarkerKind::Alert => "#ff7f0e",
            MarkerKind::Repair => "#1f77b4",
            MarkerKind::Verified => "#2ca02c",
            MarkerKind::Resolved => "#7f7f7f",
        }
    }
}

/// A vertical line at a time, labelled.
#[derive(Debug, Clone)]
pub struct Marker {
    pub at: i64,
    pub label: String,
    pub kind: MarkerKind,
}

/// A chart over `[start, end]`.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub start: i64,
    pub end: i64,
    pub lines: Vec<Line>,
    pub markers: Vec<Marker>,
    /// A horizontal line (an alert's threshold).
    pub threshold: Option<f64>,
}

const W: f64 = 800.0;
const H: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 56.0;
const PALETTE: [&str; 8] = [
    "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939",
];

/// `s` as XML character data or attribute text.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 allows no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Round tick values covering `[lo, hi]`, about five of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 20 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// A value for an axis: short, without float noise (`0.75`, `2.5k`, `1.2e-5`).
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else if a == 0.0 || a >= 1e-3 {
        (v, "")
    } else {
        return format!("{v:.1e}");
    };
    let mut t = format!("{scaled:.3}");
    while t.contains('.') && (t.ends_with('0') || t.ends_with('.')) {
        t.pop();
    }
    t + suffix
}

/// The value range drawn: every finite value and the threshold, padded a little.
fn value_range(c: &Chart) -> (f64, f64) {
    let vals = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(c.threshold)
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo > 0.0 && lo < hi * 0.5 {
        lo = 0.0;
    }
    if hi == lo {
        hi = lo + lo.abs().max(1.0);
    }
    let pad = (hi - lo) * 0.05;
    (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

/// The chart as one `<svg>` element with its namespace (valid standalone and inline in HTML).
pub fn render(c: &Chart) -> String {
    let (lo, hi) = value_range(c);
    let (t0, t1) = (c.start, c.end.max(c.start + 1));
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * pw;
    let y = |v: f64| TOP + (1.0 - (v - lo) / (hi - lo)) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11" role="img"><title>{}</title><rect width="{W}" height="{H}" fill="#fff"/><text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"##,
        xml_escape(&c.title),
        xml_escape(&c.title)
    );
    for v in ticks(lo, hi) {
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            xml_escape(&short(v))
        );
    }
    let n = 6;
    for i in 0..=n {
        let t = t0 + (t1 - t0) * i / n;
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{1:.1}" stroke="#f0f0f0"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
            x(t),
            TOP + ph,
            TOP + ph + 14.0,
            clock_label(t, t1 - t0)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    if let Some(th) = c.threshold.filter(|v| v.is_finite()) {
        let _ = write!(
            s,
            r##"<line class="threshold" x1="{LEFT}" x2="{:.1}" y1="{1:.1}" y2="{1:.1}" stroke="#d62728" stroke-dasharray="2 3"/>"##,
            W - RIGHT,
            y(th)
        );
    }
    for (i, l) in c.lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        for run in runs(&l.points) {
            let pts: Vec<String> = run
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = write!(
                s,
                r#"<polyline class="series" fill="none" stroke="{colour}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
                pts.join(" "),
                xml_escape(&l.name)
            );
        }
    }
    for (i, m) in c
        .markers
        .iter()
        .filter(|m| m.at >= t0 && m.at <= t1)
        .enumerate()
    {
        let xx = x(m.at);
        let ly = TOP + 10.0 + (i % 4) as f64 * 12.0;
        let _ = write!(
            s,
            r#"<line class="marker" x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{:.1}" stroke="{1}" stroke-dasharray="5 3" stroke-width="1.5"/><text x="{2:.1}" y="{ly:.1}" fill="{1}">{3}</text>"#,
            TOP + ph,
            m.kind.colour(),
            xx + 3.0,
            xml_escape(&m.label)
        );
    }
    legend(&mut s, c, TOP + ph + 32.0);
    s.push_str("</svg>");
    s
}

/// The series names under the plot (at most six, then "and N more").
fn legend(s: &mut String, c: &Chart, ly: f64) {
    let mut lx = LEFT;
    for (i, l) in c.lines.iter().enumerate().take(6) {
        let colour = PALETTE[i % PALETTE.len()];
        let name: String = l.name.chars().take(60).collect();
        let _ = write!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="3" fill="{colour}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 4.0,
            lx + 14.0,
            xml_escape(&name)
        );
        lx += 24.0 + name.chars().count() as f64 * 6.0;
        if lx > W - 120.0 {
            break;
        }
    }
    if c.lines.len() > 6 {
        let _ = write!(
            s,
            r#"<text x="{LEFT}" y="{:.1}">and {} more</text>"#,
            ly + 14.0,
            c.lines.len() - 6
        );
    }
}

/// The unbroken stretches of a series: NaN, infinities and gaps wider than three times the
/// usual step end one.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut steps: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let usual = steps.get(steps.len() / 2).copied().unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let mut from = 0;
    for i in 0..=points.len() {
        let breaks = i == points.len()
            || !points[i].1.is_finite()
            || (i > from && points[i].0 - points[i - 1].0 > usual.saturating_mul(3));
        if breaks {
            if i > from {
                out.push(&points[from..i]);
            }
            from = if i < points.len() && !points[i].1.is_finite() {
                i + 1
            } else {
                i
            };
        }
    }
    out
}
