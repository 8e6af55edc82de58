//! Scores `herald bounces parse --json` output against a folder's `labels.json`. Run it as
//! `scripts/bounce-conformance.sh DIR`.
//!
//! `labels.json` maps each file name to the failed recipients a mature bounce parser found,
//! in order: `{"status": "5.1.1", "reply": "550", "reason": "userunknown", "hard": true,
//! "feedback": ""}`. Scored:
//!
//! - **kind**, per file. The expected kind is `none` for an empty list, `complaint` when the
//!   reasons are `feedback`, `auto-reply` for `vacation`, `delivered` for `delivered`, and
//!   `bounce` otherwise. The labelling parser records a delay notice ("will retry", "this
//!   is a warning only") as a failure, with a 4.x.x status or, when the mail gives no code,
//!   its own `X.0.9NN` stand-in; so `delay` also counts as right for a `bounce` whose
//!   statuses are all class 4 or stand-ins.
//! - **status**, per labelled recipient, by position: equal codes, or `null` for an empty
//!   label. A label `X.0.9NN` is that parser's stand-in for "class X, no detail", so `null`
//!   and `X.0.0` count as right for it.
//! - **hard**, per labelled recipient, by position. A recipient herald did not report counts
//!   as wrong for both.
//! - **false bounces**: files whose expected kind is not `bounce` read as `bounce` or `delay`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;

const GOAL_KIND: f64 = 98.0;
const GOAL_STATUS: f64 = 95.0;
const GOAL_HARD: f64 = 95.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [labels_path, output_path] = args.as_slice() else {
        eprintln!("usage: bounce_conformance LABELS.json PARSE-OUTPUT.jsonl");
        return ExitCode::from(2);
    };
    let labels: BTreeMap<String, Vec<Value>> = match std::fs::read_to_string(labels_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bounce-conformance: {labels_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut parsed: BTreeMap<String, Value> = BTreeMap::new();
    let text = std::fs::read_to_string(output_path).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => {
                let file = v["file"].as_str().unwrap_or_default().to_string();
                // An mbox file gives one line per message; the first one is scored.
                parsed.entry(file).or_insert(v);
            }
            Err(e) => {
                eprintln!("bounce-conformance: not JSON: {e}: {line}");
                return ExitCode::from(1);
            }
        }
    }

    let (mut files, mut kind_ok) = (0usize, 0usize);
    let (mut recipients, mut status_ok, mut hard_ok) = (0usize, 0usize, 0usize);
    let mut false_bounces = 0usize;
    let mut delays_for_bounces: Vec<&str> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for (file, expected) in &labels {
        let Some(got) = parsed.get(file) else {
            problems.push(format!("{file}: not read"));
            files += 1;
            recipients += expected.len();
            continue;
        };
        files += 1;
        let want_kind = expected_kind(expected);
        let got_kind = got["kind"].as_str().unwrap_or_default();
        let delay_ok = want_kind == "bounce"
            && got_kind == "delay"
            && expected.iter().all(|r| {
                let status = r["status"].as_str().unwrap_or_default();
                status.starts_with('4') || is_stand_in(status)
            });
        if got_kind == want_kind || delay_ok {
            kind_ok += 1;
            if got_kind != want_kind {
                delays_for_bounces.push(file);
            }
        } else {
            problems.push(format!("{file}: kind {got_kind}, expected {want_kind}"));
            if want_kind != "bounce" && matches!(got_kind, "bounce" | "delay") {
                false_bounces += 1;
            }
        }
        let got_recipients = got["recipients"].as_array().cloned().unwrap_or_default();
        if got_recipients.len() != expected.len() {
            problems.push(format!(
                "{file}: {} recipients, expected {}",
                got_recipients.len(),
                expected.len()
            ));
        }
        for (i, want) in expected.iter().enumerate() {
            recipients += 1;
            let got = got_recipients.get(i);
            let got_status = got.and_then(|g| g["status"].as_str());
            let want_status = want["status"].as_str().unwrap_or_default();
            if status_matches(want_status, got_status) {
                status_ok += 1;
            } else {
                problems.push(format!(
                    "{file} #{}: status {}, expected {}",
                    i + 1,
                    got_status.unwrap_or("null"),
                    if want_status.is_empty() {
                        "null"
                    } else {
                        want_status
                    }
                ));
            }
            let want_hard = want["hard"].as_bool().unwrap_or(false);
            let got_hard = got.and_then(|g| g["hard"].as_bool());
            if got_hard == Some(want_hard) {
                hard_ok += 1;
            } else {
                problems.push(format!(
                    "{file} #{}: hard {}, expected {want_hard} ({}; herald: {})",
                    i + 1,
                    got_hard.map_or("missing".to_string(), |h| h.to_string()),
                    want["reason"].as_str().unwrap_or_default(),
                    got.and_then(|g| g["reason"].as_str()).unwrap_or("-"),
                ));
            }
        }
    }
    for extra in parsed.keys().filter(|f| !labels.contains_key(*f)) {
        problems.push(format!("{extra}: no label (not scored)"));
    }

    for p in &problems {
        println!("  {p}");
    }
    let pct = |ok: usize, all: usize| {
        if all == 0 {
            100.0
        } else {
            ok as f64 * 100.0 / all as f64
        }
    };
    let kind = pct(kind_ok, files);
    let status = pct(status_ok, recipients);
    let hard = pct(hard_ok, recipients);
    let line = |name: &str, ok: usize, all: usize, value: f64, goal: f64| {
        println!(
            "{name:<14} {ok:>4}/{all:<4} {value:6.1} %   goal >= {goal} %   {}",
            if value >= goal { "ok" } else { "BELOW GOAL" }
        );
    };
    println!("files {files}, labelled recipients {recipients}");
    line("kind", kind_ok, files, kind, GOAL_KIND);
    if !delays_for_bounces.is_empty() {
        // Said outright, so the figure can be read without the lenience: read strictly,
        // kind is (kind_ok - these) / files.
        println!(
            "  of which {} delay notices labelled as failures: {}",
            delays_for_bounces.len(),
            delays_for_bounces.join(", ")
        );
    }
    line("status", status_ok, recipients, status, GOAL_STATUS);
    line("hard", hard_ok, recipients, hard, GOAL_HARD);
    println!(
        "false bounces  {false_bounces:>4}              goal 0       {}",
        if false_bounces == 0 {
            "ok"
        } else {
            "BELOW GOAL"
        }
    );
    if kind >= GOAL_KIND && status >= GOAL_STATUS && hard >= GOAL_HARD && false_bounces == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn expected_kind(expected: &[Value]) -> &'static str {
    let reasons: Vec<&str> = expected
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or_default())
        .collect();
    match reasons.as_slice() {
        [] => "none",
        r if r.iter().all(|r| *r == "feedback") => "complaint",
        r if r.iter().all(|r| *r == "vacation") => "auto-reply",
        r if r.iter().all(|r| *r == "delivered") => "delivered",
        _ => "bounce",
    }
}

/// `X.0.9NN`: the labelling parser's code for "class X, the mail gives none".
fn is_stand_in(status: &str) -> bool {
    let parts: Vec<&str> = status.split('.').collect();
    matches!(parts.as_slice(), [_, "0", detail] if detail.len() == 3 && detail.starts_with('9'))
}

fn status_matches(want: &str, got: Option<&str>) -> bool {
    if want.is_empty() {
        return got.is_none();
    }
    if is_stand_in(want) {
        let class = &want[..1];
        return got.is_none() || got == Some(&format!("{class}.0.0"));
    }
    got == Some(want)
}
