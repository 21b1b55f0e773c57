//! The SVG chart: one panel per workload, one latency percentile curve per path (all rounds
//! merged). The x axis is in "nines" (p50, p90, p99, p99.9, p99.99), the y axis logarithmic.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::report::Scenario;
use super::PathKind;

fn color(path: PathKind) -> RGBColor {
    match path {
        PathKind::Direct => RGBColor(40, 40, 40),
        PathKind::Haproxy => RGBColor(31, 119, 180),
        PathKind::GatewayEpoll => RGBColor(214, 39, 40),
        PathKind::GatewayUring => RGBColor(44, 160, 44),
        PathKind::GatewayPolicy => RGBColor(148, 103, 189),
        PathKind::GatewayRecord => RGBColor(255, 127, 14),
        PathKind::GatewayRecordStrict => RGBColor(140, 86, 75),
    }
}

/// `q` (a fraction) to its position on the x axis.
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// Draws every scenario that has latency curves into `file`; returns how many panels.
pub fn draw(file: &Path, scenarios: &[Scenario], subtitle: &str) -> Result<usize> {
    let panels: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| {
            s.paths
                .iter()
                .any(|p| p.summary.as_ref().is_some_and(|s| s.percentiles.len() > 1))
        })
        .collect();
    if panels.is_empty() {
        return Ok(0);
    }
    let cols = 2;
    let rows = panels.len().div_ceil(cols);
    let root = SVGBackend::new(file, (1200, 60 + 380 * rows as u32)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", file.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            &format!("Gatehouse load benchmark: latency percentiles per path ({subtitle})"),
            ("sans-serif", 20),
        )
        .map_err(|e| err(&e))?;
    let x_max = 4.0;
    for (area, scenario) in root.split_evenly((rows, cols)).iter().zip(&panels) {
        let curves: Vec<(PathKind, Vec<(f64, f64)>)> = scenario
            .paths
            .iter()
            .filter_map(|p| {
                let points = p
                    .summary
                    .as_ref()?
                    .percentiles
                    .iter()
                    .filter(|[pct, _]| *pct < 100.0)
                    .map(|[pct, us]| (nines(pct / 100.0), us.max(1.0)))
                    .filter(|(x, _)| *x <= x_max + 1e-9)
                    .collect();
                Some((p.path, points))
            })
            .collect();
        let all_y = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1));
        let (lo, hi) = all_y.fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{} (per {})", scenario.name, scenario.latency_of),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, ((lo / 1.3).max(1.0)..hi * 1.3).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .x_labels(5)
            .y_desc("latency")
            .y_labels(8)
            .x_label_formatter(&|x| match x.round() as i32 {
                0 => "min".into(),
                n => {
                    let pct = format!("{:.2}", 100.0 - 100.0 * 10f64.powi(-n));
                    format!("p{}", pct.trim_end_matches('0').trim_end_matches('.'))
                }
            })
            .y_label_formatter(&|us| super::report::fmt_us(*us))
            .draw()
            .map_err(|e| err(&e))?;
        for (path, points) in curves {
            let c = color(path);
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(path.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(panels.len())
}
