//! The eval timeline (`spanwatch eval --plot FILE.png`): capture time on the
//! x axis; one row per labelled phase, a bar over its span (green when
//! detected, grey when missed) with a triangle at its first alert naming
//! the attacker and the time to detect beside it; below, the alerts as
//! marks on a row for the rules and a row for the model, coloured by
//! severity; a legend under the chart.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Alert, Evaluation};
use crate::alert::AlertSource;
use crate::capture::Timestamp;
use crate::labels::Phase;
use crate::plot::{self, Canvas, FONT, PlotError};

/// Size of the timeline, in pixels (width, height).
pub const TIMELINE_SIZE: (u32, u32) = (1600, 900);
/// Height of the legend strip under the chart, in pixels.
const LEGEND_HEIGHT: u32 = 60;
/// Width of the row names left of the chart, in pixels.
const LABEL_AREA: u32 = 250;
/// Units of the y axis in a row, and half of them.
const ROW: usize = 10;
const HALF: i32 = 5;
/// Narrowest mark drawn (a short phase, an alert), in pixels.
const MIN_MARK_PX: f64 = 3.0;

const DETECTED: RGBColor = RGBColor(44, 160, 44);
const MISSED: RGBColor = RGBColor(160, 160, 160);
const HIGH: RGBColor = RGBColor(214, 39, 40);
const MEDIUM: RGBColor = RGBColor(255, 127, 14);
const LOW: RGBColor = RGBColor(31, 119, 180);

/// The colour of a severity (Suricata's: 1 high, 2 medium, 3 and more low).
fn severity_colour(severity: u8) -> RGBColor {
    match severity {
        0 | 1 => HIGH,
        2 => MEDIUM,
        _ => LOW,
    }
}

/// `HH:MM:SS` (UTC) of a time, with tenths when `tenths`.
fn clock(t: Timestamp, tenths: bool) -> String {
    let text = t.to_string();
    let end = if tenths { 21 } else { 19 };
    text.get(11..end).map(str::to_string).unwrap_or(text)
}

/// Everything the timeline shows.
pub struct Timeline<'a> {
    /// A name for the caption (the capture's file name).
    pub capture: &'a str,
    pub phases: &'a [Phase],
    /// The evaluation of these phases (a result for each, in their order).
    pub evaluation: &'a Evaluation,
    pub alerts: &'a [Alert],
    /// First and last packet of the capture.
    pub span: (Timestamp, Timestamp),
}

impl Timeline<'_> {
    /// Draws the timeline as a PNG of [`TIMELINE_SIZE`] at `path`.
    pub fn write(&self, path: &Path) -> Result<(), PlotError> {
        plot::png(path, TIMELINE_SIZE, |root| self.draw(root))
    }

    /// The time axis: from the earliest to the latest of the capture, the
    /// phases and the alerts.
    fn time_range(&self) -> (Timestamp, Timestamp) {
        let times = [self.span.0, self.span.1]
            .into_iter()
            .chain(self.phases.iter().flat_map(|p| [p.start, p.end]))
            .chain(self.alerts.iter().map(|a| a.ts));
        let (lo, hi) = times.fold((Timestamp(i64::MAX), Timestamp(i64::MIN)), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
        if hi.0 <= lo.0 {
            (lo, lo.saturating_add_secs(1))
        } else {
            (lo, hi)
        }
    }

    fn draw(&self, root: &Canvas) -> Result<(), Box<dyn std::error::Error>> {
        let (chart_area, legend_area) =
            root.split_vertically(TIMELINE_SIZE.1.saturating_sub(LEGEND_HEIGHT));
        let (t0, t1) = self.time_range();
        let secs = |t: Timestamp| t.0.saturating_sub(t0.0) as f64 / 1e9;
        let length = secs(t1);
        let x_range = -0.01 * length..length * 1.01;

        // Rows from the top: the phases, then the rule, model and profile
        // alerts.
        let n = self.phases.len();
        let rows = n + 3;
        // In units of a tenth of a row (plotters labels integer axes at
        // chosen points; the row names sit at the rows' centres).
        let top = (rows * ROW) as i32;
        let row_lo = |i: usize| ((rows - 1 - i) * ROW) as i32;
        let rule_row = n;
        let model_row = n + 1;
        let profile_row = n + 2;
        let count = |source: AlertSource| self.alerts.iter().filter(|a| a.source == source).count();
        let mut names: Vec<String> = self.phases.iter().map(|p| p.name.clone()).collect();
        names.push(format!("rule alerts ({})", count(AlertSource::Rule)));
        names.push(format!("model alerts ({})", count(AlertSource::Model)));
        names.push(format!("profile alerts ({})", count(AlertSource::Profile)));
        let centres: Vec<i32> = (0..rows).map(|i| row_lo(i) + HALF).collect();
        let row_name = |y: &i32| {
            let from_bottom = usize::try_from(*y).unwrap_or(0) / ROW;
            (rows - 1)
                .checked_sub(from_bottom)
                .and_then(|i| names.get(i))
                .cloned()
                .unwrap_or_default()
        };

        let e = self.evaluation;
        let tenths = length < 30.0;
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(
                format!(
                    "{}: {} of {} phases detected; {} alerts, {} outside the phases",
                    self.capture,
                    e.detected,
                    e.phases.len(),
                    self.alerts.len(),
                    e.false_alerts.total
                ),
                (FONT, 26),
            )
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(LABEL_AREA)
            .build_cartesian_2d(x_range.clone(), (0..top).with_key_points(centres))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .x_labels(12)
            .x_label_formatter(&|x| {
                clock(
                    Timestamp(t0.0.saturating_add((x * 1e9).round() as i64)),
                    tenths,
                )
            })
            .y_label_formatter(&row_name)
            .x_desc(format!(
                "capture time (UTC), {}",
                t0.to_string().get(..10).unwrap_or_default()
            ))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 18))
            .draw()?;

        let pixels = chart.plotting_area().get_pixel_range().0;
        let per_px = length * 1.02 / f64::from((pixels.end - pixels.start).max(1));
        let min_width = MIN_MARK_PX * per_px;

        // Each phase's span, shaded faintly across every row.
        chart.draw_series(self.phases.iter().map(|p| {
            let (a, b) = (secs(p.start), secs(p.end).max(secs(p.start) + min_width));
            Rectangle::new([(a, 0), (b, top)], BLACK.mix(0.05).filled())
        }))?;
        // The alert rows, set apart from the phases.
        chart.draw_series(std::iter::once(PathElement::new(
            [
                (x_range.start, 2 * ROW as i32),
                (x_range.end, 2 * ROW as i32),
            ],
            BLACK.mix(0.4),
        )))?;

        for (i, (p, r)) in self.phases.iter().zip(&e.phases).enumerate() {
            let y = row_lo(i);
            let (a, b) = (secs(p.start), secs(p.end).max(secs(p.start) + min_width));
            let colour = if r.detected { DETECTED } else { MISSED };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(a, y + 2), (b, y + 8)],
                colour.mix(0.85).filled(),
            )))?;
            // The note goes after the bar and its marker, or before them
            // when they end near the right, or on the bar when it spans
            // nearly the whole axis.
            let (mut left, mut right) = (a, b);
            let note = match r.time_to_detect_secs {
                Some(after) if r.detected => {
                    let x = a + after;
                    chart.draw_series(std::iter::once(TriangleMarker::new(
                        (x, y + HALF),
                        8,
                        BLACK.filled(),
                    )))?;
                    (left, right) = (left.min(x), right.max(x));
                    if after < 0.0 {
                        format!("first alert {:.1} s before the start", -after)
                    } else {
                        format!("first alert after {after:.1} s")
                    }
                }
                _ => "missed".to_string(),
            };
            let gap = 10.0 * per_px;
            let (x, anchor) = if right + gap <= length * 0.8 {
                (right + gap, HPos::Left)
            } else if left - gap >= length * 0.2 {
                (left - gap, HPos::Right)
            } else {
                (left.max(0.0) + gap, HPos::Left)
            };
            let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(anchor, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(note, (x, y + HALF), style)))?;
        }

        // Alerts: low first, high last, so the most severe stay on top.
        let mut marks: Vec<&Alert> = self.alerts.iter().collect();
        marks.sort_by_key(|a| std::cmp::Reverse(a.severity));
        chart.draw_series(marks.into_iter().map(|a| {
            let row = match a.source {
                AlertSource::Rule => rule_row,
                AlertSource::Model => model_row,
                AlertSource::Profile => profile_row,
            };
            let (x, y) = (secs(a.ts), row_lo(row));
            Rectangle::new(
                [(x - min_width / 2.0, y + 1), (x + min_width / 2.0, y + 9)],
                severity_colour(a.severity).mix(0.8).filled(),
            )
        }))?;

        legend(&legend_area)
    }
}

/// A swatch of the legend.
enum Swatch {
    Bar(RGBColor),
    Triangle,
    Tick(RGBColor),
}

/// The legend strip: each swatch with its meaning, left to right.
fn legend(area: &Canvas) -> Result<(), Box<dyn std::error::Error>> {
    let items = [
        (Swatch::Bar(DETECTED), "phase, detected"),
        (Swatch::Bar(MISSED), "phase, missed"),
        (Swatch::Triangle, "first alert naming the attacker"),
        (Swatch::Tick(HIGH), "alert, high"),
        (Swatch::Tick(MEDIUM), "alert, medium"),
        (Swatch::Tick(LOW), "alert, low"),
    ];
    let font = (FONT, 16).into_font();
    let y = (LEGEND_HEIGHT / 2) as i32;
    // Under the plotting area, which starts past the row names.
    let mut x = LABEL_AREA as i32 + 40;
    for (swatch, text) in items {
        match swatch {
            Swatch::Bar(c) => area.draw(&Rectangle::new(
                [(x, y - 8), (x + 28, y + 8)],
                c.mix(0.85).filled(),
            ))?,
            Swatch::Triangle => area.draw(&TriangleMarker::new((x + 14, y), 8, BLACK.filled()))?,
            Swatch::Tick(c) => area.draw(&Rectangle::new(
                [(x + 12, y - 10), (x + 16, y + 10)],
                c.filled(),
            ))?,
        }
        x += 36;
        area.draw(&Text::new(
            text,
            (x, y),
            TextStyle::from(font.clone()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let (w, _) = area.estimate_text_size(text, &TextStyle::from(font.clone()))?;
        x += w as i32 + 32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_labels_are_utc_times_of_day() {
        // `date -u -d @1795844176.127 +%H:%M:%S.%N` → 05:36:16.127000000
        assert_eq!(
            clock(Timestamp(1_795_844_176_127_000_000), false),
            "05:36:16"
        );
        assert_eq!(
            clock(Timestamp(1_795_844_176_127_000_000), true),
            "05:36:16.1"
        );
    }

    #[test]
    fn an_empty_capture_without_phases_or_alerts_still_draws() {
        // A zero-length span: the time axis would be empty without care.
        let t = Timestamp(1_795_844_176_000_000_000);
        let evaluation = crate::eval::evaluate(&[], &[], 0, (t, t));
        let path =
            std::env::temp_dir().join(format!("spanwatch-timeline-{}.png", std::process::id()));
        Timeline {
            capture: "empty.pcap",
            phases: &[],
            evaluation: &evaluation,
            alerts: &[],
            span: (t, t),
        }
        .write(&path)
        .expect("drawn");
        let png = std::fs::read(&path).expect("written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR's width and height (PNG spec section 11.2.2): 1600×900.
        assert_eq!(&png[16..24], &[0, 0, 6, 64, 0, 0, 3, 132]);
        let _ = std::fs::remove_file(&path);
    }
}
