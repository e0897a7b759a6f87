//! The model card (`MODEL_CARD.md` beside `model.json`): what the model was
//! trained on, the choices made, the false-alarm rate to expect, its limits,
//! and the training plots written beside it.

use std::fmt::Write as _;

use super::fit::{FitReport, SCALE_FLOOR, SPREAD_FLOOR, THRESHOLD_FLOOR};
use super::plots::{CLUSTERS_PNG, PROJECTION_PNG, SCORES_PNG};
use crate::detect::model::ModelArtifact;

/// The card's text.
pub fn card(a: &ModelArtifact, report: &FitReport) -> String {
    let t = &a.training;
    let mut s = String::new();
    let _ = writeln!(s, "# Model card: spanwatch model `{}`\n", a.model_id);
    let _ = writeln!(
        s,
        "A {} model of normal device behaviour: {} clusters of feature windows \
         (spanwatch {}, model layout version {}). Each window of a device is \
         assigned to the nearest cluster centre and scored by the root mean \
         square of its deviations from it, each feature's in units of that \
         cluster's spread in the feature; a score above the cluster's \
         threshold is an anomaly.\n",
        t.algorithm,
        a.clusters.len(),
        a.spanwatch_version,
        a.version
    );
    let _ = writeln!(s, "## Data\n");
    let _ = writeln!(s, "- Inputs: {}", t.inputs.len());
    for i in &t.inputs {
        let _ = writeln!(s, "  - `{i}`");
    }
    let _ = writeln!(
        s,
        "- Windows: {} from {} devices; {} left out because a labelled attack \
         phase covers them; {} fitted, {} held back to calibrate the thresholds.",
        t.windows, t.devices, t.attack_windows_excluded, t.fit_windows, t.held_out_windows
    );
    let _ = writeln!(
        s,
        "- Features: {} (`spanwatch features`).\n",
        a.features.len()
    );
    let _ = writeln!(s, "## Choices\n");
    let _ = writeln!(
        s,
        "- Transform: ln(1 + x) of every count, then robust scaling: minus the \
         median, divided by the interquartile range (at least {SCALE_FLOOR}). \
         A cluster's spread in a feature is the root mean square deviation of \
         its windows (at least {SPREAD_FLOOR}); thresholds are at least \
         {THRESHOLD_FLOOR}."
    );
    let ks: Vec<String> = t
        .k_silhouette
        .iter()
        .map(|(k, q)| format!("k={k}: {q}"))
        .collect();
    let _ = writeln!(
        s,
        "- k chosen by {} among: {}.",
        if t.algorithm == "gmm" {
            "BIC (shown negated: higher is better)"
        } else {
            "mean silhouette"
        },
        ks.join(", ")
    );
    let _ = writeln!(s, "- Seed {}.", t.seed);
    let _ = writeln!(
        s,
        "\n| cluster | windows | median spread | features at the floor | threshold |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (i, c) in a.clusters.iter().enumerate() {
        let mut spread = c.spread.clone();
        spread.sort_by(f64::total_cmp);
        let median = spread.get(spread.len() / 2).copied().unwrap_or_default();
        let floor = c.spread.iter().filter(|s| **s <= SPREAD_FLOOR).count();
        let _ = writeln!(
            s,
            "| {i} | {} | {median:.3} | {floor} | {:.2} |",
            c.size, c.threshold
        );
    }
    let _ = writeln!(s, "\n## Expected false alarms\n");
    let _ = writeln!(
        s,
        "Thresholds aim at {} anomalous windows per normal window; on the {} \
         held-back windows the rate is {:.5}. At 10-second windows a rate r is \
         8640·r windows a device-day; the sensor raises one alert per episode, \
         and `--learn` raises each device's threshold to its own normal.\n",
        t.target_false_alarm_rate,
        report.held_out_scores.len(),
        t.held_out_false_alarm_rate
    );
    let _ = writeln!(s, "## Plots\n");
    for (what, file) in [
        (
            "Scores of the held-back windows, with each cluster's threshold \
             (or the pooled one) as a vertical line",
            SCORES_PNG,
        ),
        ("Fitted windows per cluster", CLUSTERS_PNG),
        (
            "A sample of the fitted windows on their first two principal \
             components, coloured by cluster",
            PROJECTION_PNG,
        ),
    ] {
        let _ = writeln!(s, "{what}:\n\n![{what}]({file})\n");
    }
    let _ = writeln!(s, "## Known limits\n");
    let _ = writeln!(
        s,
        "- The model knows only the kinds of devices and behaviour it was \
         trained on: a kind of device absent from the data looks anomalous \
         until learned (`--learn`).\n\
         - Slow attacks spread over many windows (one login attempt a minute) \
         stay within normal windows: the rules cover them.\n\
         - A window is per device: distributed attacks show on the target's \
         windows, not on each source's.\n\
         - Windows are 10 s of packet time; counts of longer behaviours (a \
         silence of minutes) are seen through `period_overdue` only while the \
         device still gets rows."
    );
    s
}
