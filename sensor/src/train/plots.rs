//! The training plots `spanwatch train` writes beside `model.json` and links
//! from the model card: the held-back windows' scores with the thresholds,
//! the clusters' sizes, and the windows projected on two principal
//! components, coloured by cluster.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::fit::FitReport;
use crate::detect::model::ModelArtifact;
use crate::plot::{self, Canvas, FONT, PlotError};

/// Histogram of the held-back windows' scores with the thresholds.
pub const SCORES_PNG: &str = "scores.png";
/// Bar chart of the windows in each cluster.
pub const CLUSTERS_PNG: &str = "clusters.png";
/// The 2-D projection of a sample of windows, coloured by cluster.
pub const PROJECTION_PNG: &str = "projection.png";
/// Size of each training plot, in pixels (width, height).
pub const PLOT_SIZE: (u32, u32) = (1200, 800);
/// Bins of the score histogram.
pub const SCORE_BINS: usize = 60;

/// Cluster colours (Tableau 10), reused in turn past ten clusters.
const CLUSTER_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn cluster_colour(i: usize) -> RGBColor {
    CLUSTER_COLOURS[i % CLUSTER_COLOURS.len()]
}

/// Writes the three plots into `dir`; returns their paths.
pub fn write_all(
    dir: &Path,
    a: &ModelArtifact,
    report: &FitReport,
) -> Result<Vec<PathBuf>, PlotError> {
    let scores_path = dir.join(SCORES_PNG);
    plot::png(&scores_path, PLOT_SIZE, |root| scores(root, a, report))?;
    let clusters_path = dir.join(CLUSTERS_PNG);
    plot::png(&clusters_path, PLOT_SIZE, |root| clusters(root, a))?;
    let projection_path = dir.join(PROJECTION_PNG);
    plot::png(&projection_path, PLOT_SIZE, |root| {
        projection(root, a, report)
    })?;
    Ok(vec![scores_path, clusters_path, projection_path])
}

/// Counts of `values` (all ≥ 0) in `bins` equal bins over `0..hi`; a value
/// at or past `hi` falls in the last bin.
fn histogram(values: impl Iterator<Item = f64>, hi: f64, bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    let width = hi / bins as f64;
    for v in values {
        let i = ((v.max(0.0) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
}

/// The distinct thresholds, each with the clusters that use it.
fn threshold_groups(a: &ModelArtifact) -> Vec<(f64, Vec<usize>)> {
    let mut groups: Vec<(f64, Vec<usize>)> = Vec::new();
    for (i, c) in a.clusters.iter().enumerate() {
        match groups.iter_mut().find(|(t, _)| *t == c.threshold) {
            Some((_, members)) => members.push(i),
            None => groups.push((c.threshold, vec![i])),
        }
    }
    groups
}

fn scores(
    root: &Canvas,
    a: &ModelArtifact,
    report: &FitReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let held = &report.held_out_scores;
    let groups = threshold_groups(a);
    let top_score = held.iter().map(|(_, s)| *s).fold(0.0, f64::max);
    let top_threshold = groups.iter().map(|(t, _)| *t).fold(0.0, f64::max);
    let hi = (top_score.max(top_threshold) * 1.05).max(1.0);
    let counts = histogram(held.iter().map(|(_, s)| *s), hi, SCORE_BINS);
    let over = held
        .iter()
        .filter(|(c, s)| a.clusters.get(*c).is_some_and(|k| *s > k.threshold))
        .count();
    // Counts on a log scale, the bars rising from just under one window,
    // with room above the highest for the legend.
    let base = 0.7;
    let top = (counts.iter().copied().max().unwrap_or(1).max(1) as f64) * 8.0;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Scores of the {} held-back windows ({over} over their cluster's threshold)",
                held.len()
            ),
            (FONT, 26),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..hi, (base..top).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_x_mesh()
        .x_desc("score: RMS deviation from the nearest centre, in units of that cluster's spreads")
        .y_desc("windows (log scale)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    let width = hi / SCORE_BINS as f64;
    let bar = RGBColor(70, 130, 180).mix(0.8).filled();
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| {
                    let x = i as f64 * width;
                    Rectangle::new([(x, base), (x + width, *n as f64)], bar)
                }),
        )?
        .label("held-back windows")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], bar));
    for (threshold, members) in groups {
        let colour = match members.as_slice() {
            [one] => cluster_colour(*one),
            _ => BLACK,
        };
        let names: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        let label = match members.len() {
            1 => format!("threshold {threshold:.2}: cluster {}", names[0]),
            _ => format!("threshold {threshold:.2}: clusters {}", names.join(", ")),
        };
        chart
            .draw_series(LineSeries::new(
                [(threshold, base), (threshold, top)],
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperMiddle)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .draw()?;
    Ok(())
}

fn clusters(root: &Canvas, a: &ModelArtifact) -> Result<(), Box<dyn std::error::Error>> {
    let k = a.clusters.len();
    let top = a.clusters.iter().map(|c| c.size).max().unwrap_or(0).max(1) as f64 * 1.12;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Fitted windows per cluster ({k} clusters, {} windows)",
                a.training.fit_windows
            ),
            (FONT, 26),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(80)
        // An integer range includes its end: clusters 0 to k - 1.
        .build_cartesian_2d((0..k.saturating_sub(1)).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_x_mesh()
        .x_labels(k.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => i.to_string(),
            SegmentValue::Last => String::new(),
        })
        .x_desc("cluster")
        .y_desc("windows")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    chart.draw_series(a.clusters.iter().enumerate().map(|(i, c)| {
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), c.size as f64),
            ],
            cluster_colour(i).filled(),
        );
        bar.set_margin(0, 0, 12, 12);
        bar
    }))?;
    let above = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(a.clusters.iter().enumerate().map(|(i, c)| {
        Text::new(
            c.size.to_string(),
            (SegmentValue::CenterOf(i), c.size as f64),
            above.clone(),
        )
    }))?;
    Ok(())
}

/// `lo..hi` widened by 5 % on each side (by 1 if empty).
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        let mid = if lo.is_finite() { lo } else { 0.0 };
        return mid - 1.0..mid + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    lo - pad..hi + pad
}

fn projection(
    root: &Canvas,
    a: &ModelArtifact,
    report: &FitReport,
) -> Result<(), Box<dyn std::error::Error>> {
    let points = &report.projection;
    let (x0, x1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
    let (y0, y1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "{} fitted windows on their first two principal components, by cluster",
                points.len()
            ),
            (FONT, 26),
        )
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(padded(x0, x1), padded(y0, y1))?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("first principal component (scaled features)")
        .y_desc("second principal component")
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 18))
        .draw()?;
    for cluster in 0..a.clusters.len() {
        let colour = cluster_colour(cluster);
        let mine: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.2 == cluster)
            .map(|p| (p.0, p.1))
            .collect();
        let n = mine.len();
        chart
            .draw_series(
                mine.into_iter()
                    .map(|p| Circle::new(p, 3, colour.mix(0.6).filled())),
            )?
            .label(format!("cluster {cluster} ({n})"))
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, 16))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::model::artifact::{Cluster, MODEL_FORMAT, MODEL_VERSION, Training};
    use crate::features::FEATURE_COUNT;

    fn artifact(clusters: &[(f64, u64)]) -> ModelArtifact {
        ModelArtifact {
            format: MODEL_FORMAT.into(),
            version: MODEL_VERSION,
            spanwatch_version: "test".into(),
            model_id: "test".into(),
            features: Vec::new(),
            log1p: true,
            center: Vec::new(),
            scale: Vec::new(),
            clusters: clusters
                .iter()
                .map(|&(threshold, size)| Cluster {
                    centroid: Vec::new(),
                    spread: vec![1.0; FEATURE_COUNT],
                    threshold,
                    size,
                })
                .collect(),
            training: Training::default(),
        }
    }

    #[test]
    fn clusters_sharing_the_pooled_threshold_are_grouped() {
        let a = artifact(&[(3.0, 10), (4.5, 20), (3.0, 5)]);
        assert_eq!(
            threshold_groups(&a),
            vec![(3.0, vec![0, 2]), (4.5, vec![1])]
        );
    }

    #[test]
    fn degenerate_fits_still_draw_every_plot() {
        // One cluster, no held-back window, every projected window at one
        // point: each axis range would be empty without care.
        let dir = std::env::temp_dir().join(format!("spanwatch-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let a = artifact(&[(3.0, 0)]);
        let report = FitReport {
            held_out_scores: Vec::new(),
            projection: vec![(1.0, 1.0, 0); 3],
        };
        let written = write_all(&dir, &a, &report).expect("drawn");
        assert_eq!(written.len(), 3);
        for path in written {
            let png = std::fs::read(&path).expect("written");
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
            // IHDR's width and height (PNG spec section 11.2.2).
            assert_eq!(&png[16..24], &[0, 0, 4, 176, 0, 0, 3, 32], "1200×800");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn histogram_bins_cover_the_range_and_clamp_the_top() {
        // Bins of width 1 over 0..4: 0.0 and 0.99 in the first, 1.0 in the
        // second, 4.0 (the top) and 9.0 (past it) in the last.
        let counts = histogram([0.0, 0.99, 1.0, 3.5, 4.0, 9.0].into_iter(), 4.0, 4);
        assert_eq!(counts, vec![2, 1, 0, 3]);
    }

    #[test]
    fn empty_or_flat_ranges_are_widened() {
        assert_eq!(padded(2.0, 2.0), 1.0..3.0);
        assert_eq!(padded(f64::INFINITY, f64::NEG_INFINITY), -1.0..1.0);
        assert_eq!(padded(0.0, 10.0), -0.5..10.5);
    }
}
