//! The billing page's chart: billed minutes per day of the month, one bar per day with builds,
//! stacked by repository (one colour each), and the month's cap as a line when one is set. SVG,
//! drawn here.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Datelike, NaiveDate};

use super::escape;

/// A repository's billed minutes on one day of the month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayMinutes {
    pub day: u32,
    pub repository: String,
    pub minutes: u64,
}

const COLOURS: [&str; 8] = [
    "#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#1b7c83", "#57606a",
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

/// The chart of `days` in `month` (`YYYY-MM`), with `cap` (the month's minutes) as a line.
pub fn chart_svg(month: &str, days: &[DayMinutes], cap: Option<u64>) -> String {
    let mut repositories: Vec<&str> = days.iter().map(|d| d.repository.as_str()).collect();
    repositories.sort_unstable();
    repositories.dedup();
    let mut per_day: BTreeMap<u32, Vec<&DayMinutes>> = BTreeMap::new();
    for d in days {
        per_day.entry(d.day).or_default().push(d);
    }
    let highest = per_day
        .values()
        .map(|ds| ds.iter().map(|d| d.minutes).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(cap.unwrap_or(0))
        .max(1);
    let plot = Plot {
        scale: (HEIGHT - BOTTOM - 10.0) / highest as f64,
        slot: (WIDTH - LEFT) / f64::from(days_in(month)),
        repositories: &repositories,
    };
    let mut svg = format!(
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {}\" \
         width=\"100%\" role=\"img\" aria-label=\"Billed minutes per day in {}\">",
        HEIGHT + 20.0 * repositories.len().div_ceil(4) as f64,
        escape(month)
    );
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\" stroke=\"#57606a\"/>\
         <text x=\"{}\" y=\"14\" font-size=\"11\" text-anchor=\"end\">{highest}</text>\
         <text x=\"{}\" y=\"{base}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        LEFT - 4.0,
        LEFT - 4.0
    );
    for (day, parts) in &per_day {
        plot.day(&mut svg, month, *day, parts);
    }
    if let Some(cap) = cap {
        let y = base - cap as f64 * plot.scale;
        let _ = write!(
            svg,
            "<line id=\"cap\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{WIDTH}\" y2=\"{y:.1}\" stroke=\"#cf222e\" \
             stroke-dasharray=\"6 4\"/><text x=\"{WIDTH}\" y=\"{:.1}\" font-size=\"11\" \
             text-anchor=\"end\" fill=\"#cf222e\">cap {cap}</text>",
            y - 3.0
        );
    }
    plot.legend(&mut svg);
    svg.push_str("</svg>");
    svg
}

/// How many days `month` (`YYYY-MM`) has (31 when it is not a month).
fn days_in(month: &str) -> u32 {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .ok()
        .and_then(|first| {
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }?;
            u32::try_from((next - first).num_days()).ok()
        })
        .unwrap_or(31)
}

/// The chart's scale: pixels a minute, a day's slot, and the repositories (each a colour).
struct Plot<'a> {
    scale: f64,
    slot: f64,
    repositories: &'a [&'a str],
}

impl Plot<'_> {
    fn colour(&self, repository: &str) -> &'static str {
        let i = self
            .repositories
            .iter()
            .position(|r| *r == repository)
            .unwrap_or(0);
        COLOURS[i % COLOURS.len()]
    }

    /// One day's bar: its repositories' minutes stacked, and the day's number under it.
    fn day(&self, svg: &mut String, month: &str, day: u32, parts: &[&DayMinutes]) {
        let base = HEIGHT - BOTTOM;
        let bar = (self.slot * 0.7).max(1.0);
        let x = LEFT + self.slot * f64::from(day - 1) + (self.slot - bar) / 2.0;
        let total: u64 = parts.iter().map(|d| d.minutes).sum();
        let _ = write!(
            svg,
            "<g class=\"day\" data-day=\"{day}\" data-minutes=\"{total}\"><title>{month}-{day:02}: {total} billed minute(s)</title>"
        );
        let mut top = base;
        for part in parts {
            let h = part.minutes as f64 * self.scale;
            top -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                self.colour(&part.repository)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{day}</text></g>",
            x + bar / 2.0,
            base + 12.0
        );
    }

    /// The repositories' colours, four to a row under the chart.
    fn legend(&self, svg: &mut String) {
        for (i, repository) in self.repositories.iter().enumerate() {
            let x = LEFT + 170.0 * (i % 4) as f64;
            let y = HEIGHT + 6.0 + 20.0 * (i / 4) as f64;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
                self.colour(repository),
                x + 14.0,
                y + 9.0,
                escape(repository)
            );
        }
    }
}
