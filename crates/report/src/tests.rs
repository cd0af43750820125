use super::*;

const T0: i64 = 1_700_000_000_000;
const M: i64 = 60_000;

fn chart(name: &str) -> Chart {
    let points: Vec<(i64, f64)> = (0..60)
        .map(|i| {
            let v = if i == 30 { f64::NAN } else { (i % 7) as f64 };
            (T0 + i * M, v)
        })
        .collect();
    Chart {
        title: format!("errors of {name}"),
        start: T0,
        end: T0 + 59 * M,
        lines: vec![Line {
            name: name.into(),
            points,
        }],
        markers: vec![
            Marker {
                at: T0 + 10 * M,
                label: "fault".into(),
                kind: MarkerKind::Fault,
            },
            Marker {
                at: T0 + 20 * M,
                label: "repair <b>".into(),
                kind: MarkerKind::Repair,
            },
            Marker {
                at: T0 + 90 * M,
                label: "outside".into(),
                kind: MarkerKind::Resolved,
            },
        ],
        threshold: Some(5.0),
    }
}

#[test]
fn a_chart_is_well_formed_svg_with_its_lines_markers_and_threshold() {
    let hostile = r#"</svg><script>alert(1)</script>{job="a&b"}"#;
    let text = svg::render(&chart(hostile));
    let doc = roxmltree::Document::parse(&text).expect("the chart parses as XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert!(!doc.descendants().any(|n| n.has_tag_name("script")));
    let class = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .count()
    };
    // The NaN at minute 30 splits the series in two.
    assert_eq!(class("series"), 2);
    // The marker outside the chart's time is not drawn.
    assert_eq!(class("marker"), 2);
    assert_eq!(class("threshold"), 1);
    // The fault marker sits at a sixth of the plot (10 of 59 minutes), x = 64 + 10/59 × 720.
    let fault = doc
        .descendants()
        .find(|n| n.attribute("class") == Some("marker"))
        .unwrap();
    let x: f64 = fault.attribute("x1").unwrap().parse().unwrap();
    assert!((x - (64.0 + 10.0 / 59.0 * 720.0)).abs() < 0.1, "{x}");
    // The hostile name is text, whole.
    assert!(doc.descendants().any(|n| n.text() == Some(hostile)));
    assert!(doc.descendants().any(|n| n.text() == Some("repair <b>")));
}

#[test]
fn markdown_and_html_escape_text_and_hold_everything() {
    let mut d = Doc::new("Incident #1 | <checkout>");
    d.heading("Timeline")
        .push(Block::Table {
            headers: vec!["when".into(), "what".into()],
            rows: vec![vec!["14:00".into(), "a | b\nc *d*".into()]],
        })
        .push(Block::Code("``` inside ```".into()))
        .push(Block::Facts(vec![("Duration".into(), "3m".into())]))
        .push(Block::Chart(chart("x")));
    let md = d.markdown();
    assert!(md.starts_with("# Incident #1 \\| \\<checkout\\>\n"));
    assert!(md.contains("| 14:00 | a \\| b c \\*d\\* |\n"), "{md}");
    // The fence is longer than any backtick run inside.
    assert!(md.contains("````\n``` inside ```\n````"));
    assert!(md.contains("](data:image/svg+xml;base64,"));
    let html = d.html();
    assert!(html.contains("<h1>Incident #1 | &lt;checkout&gt;</h1>"));
    assert!(html.contains("<td>a | b\nc *d*</td>"));
    assert!(html.contains("<figure><svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "nothing external"
    );
}

#[test]
fn axis_values_are_short() {
    let got: Vec<String> = [0.0, 0.75, 0.5, 1.0, 2500.0, 1.5e6, 0.00001234, -3.0]
        .iter()
        .map(|v| svg::short(*v))
        .collect();
    assert_eq!(
        got,
        ["0", "0.75", "0.5", "1", "2.5k", "1.5M", "1.2e-5", "-3"]
    );
}
