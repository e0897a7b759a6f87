//! Metric families built from values read elsewhere (the published
//! snapshots): counters, gauges and histograms in the `prometheus` crate's
//! data model, ready for its text encoder.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

/// The families of one scrape, in the order they are added.
#[derive(Default)]
pub struct Families(Vec<MetricFamily>);

impl Families {
    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        self.0.push(f);
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.counters(name, help, &[], [(Vec::<String>::new(), value)]);
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.gauges(name, help, &[], [(Vec::<String>::new(), value)]);
    }

    /// A counter with one series per row: the values of `labels`, in order,
    /// and the count. Without rows the family is left out (the text format
    /// has no empty family).
    pub fn counters<L: AsRef<str>>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<L>, u64)>,
    ) {
        let metrics: Vec<Metric> = rows
            .into_iter()
            .map(|(values, n)| {
                let mut m = Metric::from_label(label_pairs(labels, &values));
                let mut c = Counter::default();
                c.set_value(n as f64);
                m.set_counter(c);
                m
            })
            .collect();
        if !metrics.is_empty() {
            self.family(name, help, MetricType::COUNTER)
                .set_metric(metrics);
        }
    }

    /// A gauge with one series per row (see [`Families::counters`]).
    pub fn gauges<L: AsRef<str>>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<L>, f64)>,
    ) {
        let metrics: Vec<Metric> = rows
            .into_iter()
            .map(|(values, v)| {
                let mut g = Gauge::default();
                g.set_value(v);
                let mut m = Metric::from_gauge(g);
                m.set_label(label_pairs(labels, &values));
                m
            })
            .collect();
        if !metrics.is_empty() {
            self.family(name, help, MetricType::GAUGE)
                .set_metric(metrics);
        }
    }

    /// A histogram from cumulative bucket counts (one per bound), the total
    /// count and the sum.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[f64],
        cumulative: &[u64],
        count: u64,
        sum: f64,
    ) {
        let buckets = bounds
            .iter()
            .zip(cumulative)
            .map(|(bound, n)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(*n);
                b
            })
            .collect();
        let mut h = Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(count);
        h.set_sample_sum(sum);
        let mut m = Metric::default();
        m.set_histogram(h);
        self.family(name, help, MetricType::HISTOGRAM)
            .set_metric(vec![m]);
    }

    /// Families collected elsewhere (the process metrics).
    pub fn extend(&mut self, families: Vec<MetricFamily>) {
        self.0.extend(families);
    }

    /// Every family, sorted by name as Prometheus' own registries give them.
    pub fn into_sorted(mut self) -> Vec<MetricFamily> {
        self.0.sort_by(|a, b| a.name().cmp(b.name()));
        self.0
    }
}

fn label_pairs<L: AsRef<str>>(names: &[&str], values: &[L]) -> Vec<LabelPair> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_string());
            pair.set_value(value.as_ref().to_string());
            pair
        })
        .collect()
}
