//! The report's chart, drawn on the server as SVG: clicks, unsubscribes and bounces per hour
//! over the first 72 hours after the send started, one band per series on a shared time
//! axis, each band scaled to its own largest hour (labelled), so a handful of unsubscribes
//! is not flattened by hundreds of clicks.
//!
//! No script, no stylesheet and no external request: colours are presentation attributes,
//! so the dashboard's Content-Security-Policy (`style-src 'self'`) allows it inline. The
//! drawing is 360 units wide, a phone's width, and scales with its container.

use std::fmt::Write as _;

use super::report::Hourly;

/// The words the chart shows, from the dashboard's catalog.
pub struct ChartLabels<'a> {
    /// The chart's accessible name.
    pub title: String,
    pub clicks: String,
    pub unsubscribes: String,
    pub bounces: String,
    /// "{n}h" style labels of the axis, for 0, 24, 48 and 72 hours.
    pub hours: [String; 4],
    /// The label of a band's largest hour ("most in one hour: 12"), given that number.
    pub peak: &'a dyn Fn(u64) -> String,
}

const WIDTH: f64 = 360.0;
const LEFT: f64 = 8.0;
const RIGHT: f64 = 8.0;
const BAND: f64 = 78.0;
const BAR_AREA: f64 = 50.0;
const TOP: f64 = 4.0;
/// The hours drawn.
pub const HOURS: usize = 72;

fn escape(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
}

/// The SVG element for `hourly` (the first 72 hours, in order; missing hours are zero).
pub fn svg(hourly: &[Hourly], labels: &ChartLabels<'_>) -> String {
    let series: [(&str, &str, Vec<u64>); 3] = [
        (
            &labels.clicks,
            "#2563eb",
            hourly.iter().map(|h| h.clicks).collect(),
        ),
        (
            &labels.unsubscribes,
            "#b45309",
            hourly.iter().map(|h| h.unsubscribes).collect(),
        ),
        (
            &labels.bounces,
            "#b91c1c",
            hourly.iter().map(|h| h.bounces).collect(),
        ),
    ];
    let height = TOP + BAND * series.len() as f64 + 24.0;
    let plot = WIDTH - LEFT - RIGHT;
    let step = plot / HOURS as f64;
    let mut out = String::with_capacity(8 * 1024);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" role=\"img\" aria-labelledby=\"chart-title\" \
         font-family=\"system-ui, sans-serif\" font-size=\"13\">\
         <title id=\"chart-title\">{}</title>",
        escape(&labels.title)
    );
    for (band, (name, colour, values)) in series.iter().enumerate() {
        let top = TOP + BAND * band as f64;
        let base = top + 18.0 + BAR_AREA;
        let peak = values.iter().copied().max().unwrap_or(0);
        let total: u64 = values.iter().sum();
        let _ = write!(
            out,
            "<g data-series=\"{band}\" data-total=\"{total}\">\
             <text x=\"{LEFT}\" y=\"{}\" fill=\"#111827\" font-weight=\"600\">{}</text>\
             <text x=\"{}\" y=\"{}\" fill=\"#4b5563\" text-anchor=\"end\">{}</text>\
             <line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#9ca3af\" stroke-width=\"1\"/>",
            top + 13.0,
            escape(name),
            WIDTH - RIGHT,
            top + 13.0,
            escape(&(labels.peak)(peak)),
            WIDTH - RIGHT,
        );
        for (hour, value) in values.iter().enumerate().take(HOURS) {
            if *value == 0 || peak == 0 {
                continue;
            }
            let h = (*value as f64 / peak as f64 * BAR_AREA).max(1.5);
            let _ = write!(
                out,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{h:.2}\" fill=\"{colour}\" \
                 data-hour=\"{hour}\" data-value=\"{value}\"><title>{hour}h: {value}</title></rect>",
                LEFT + step * hour as f64 + step * 0.1,
                base - h,
                step * 0.8,
            );
        }
        out.push_str("</g>");
    }
    let axis = TOP + BAND * series.len() as f64 + 2.0;
    for (i, label) in labels.hours.iter().enumerate() {
        let x = LEFT + plot * i as f64 / 3.0;
        let anchor = match i {
            0 => "start",
            3 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            "<line x1=\"{x:.2}\" y1=\"{TOP}\" x2=\"{x:.2}\" y2=\"{axis}\" stroke=\"#e5e7eb\" stroke-width=\"1\"/>\
             <text x=\"{x:.2}\" y=\"{}\" fill=\"#4b5563\" text-anchor=\"{anchor}\">{}</text>",
            axis + 17.0,
            escape(label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> ChartLabels<'static> {
        ChartLabels {
            title: "Activity <72h>".into(),
            clicks: "Clicks".into(),
            unsubscribes: "Unsubscribes".into(),
            bounces: "Bounces".into(),
            hours: ["0h".into(), "24h".into(), "48h".into(), "72h".into()],
            peak: &|n| format!("peak {n}"),
        }
    }

    #[test]
    fn draws_one_bar_per_busy_hour_scaled_to_its_band() {
        let mut hourly = vec![Hourly::default(); HOURS];
        hourly[0].clicks = 10;
        hourly[5].clicks = 5;
        hourly[5].unsubscribes = 1;
        let svg = svg(&hourly, &labels());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("data-hour=\"5\" data-value=\"1\""));
        assert!(svg.contains("Activity &lt;72h&gt;"));
        assert!(svg.contains("peak 10"));
        assert!(
            !svg.contains("style="),
            "no inline style: the dashboard's CSP forbids it"
        );
        assert!(
            !svg.contains("http://")
                || !svg
                    .replace("http://www.w3.org/2000/svg", "")
                    .contains("http://")
        );
    }
}
