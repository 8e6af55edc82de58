//! Golden-file snapshots: compare output with `tests/snapshots/NAME`, and rewrite the file
//! when `HERALD_UPDATE_SNAPSHOTS=1` (or when it does not exist yet).

/// Compares `actual` with the golden file, writing it when missing or when asked to.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    let update = std::env::var("HERALD_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    if update || !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    if expected != actual {
        panic!(
            "{} differs from the rendered output (HERALD_UPDATE_SNAPSHOTS=1 rewrites it)\n{}",
            path.display(),
            diff_excerpt(&expected, actual)
        );
    }
}

/// The first differing line with a little context from both sides.
fn diff_excerpt(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = first.saturating_sub(2);
    let show = |lines: &[&str]| {
        lines
            .iter()
            .enumerate()
            .skip(from)
            .take(5)
            .map(|(i, l)| {
                format!(
                    "{:>5} | {}\n",
                    i + 1,
                    l.chars().take(200).collect::<String>()
                )
            })
            .collect::<String>()
    };
    format!(
        "first difference at line {} (expected {} lines, got {})\n--- expected\n{}+++ actual\n{}",
        first + 1,
        e.len(),
        a.len(),
        show(&e),
        show(&a)
    )
}

/// A message with its Message-ID, Date and MIME boundaries blanked, and CRLF as LF.
pub fn blank_volatile(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    let boundary = regex::Regex::new(r#"boundary="([^"]+)""#)
        .unwrap()
        .captures(&text)
        .expect("a boundary")[1]
        .to_string();
    let text = text.replace(&boundary, "[boundary]");
    let text = regex::Regex::new(r"(?m)^Date: .*$")
        .unwrap()
        .replace(&text, "Date: [date]");
    let text = regex::Regex::new(r"(?m)^Message-ID: <[^>]*>$")
        .unwrap()
        .replace(&text, "Message-ID: <[message-id]>");
    text.into_owned()
}
