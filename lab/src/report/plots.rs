//! The HTML report's plots, drawn by plotters' SVG backend: each function
//! takes data from [`super::figures`] and returns one `<svg>` element as
//! text, to be put inline in the page.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;
use super::figures::{Pauses, Rate, Shape, Timeline, Trend};
use super::table::format_number;

/// The colours of series, in order (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// The width of a plot that spans the page, in pixels.
const WIDE: u32 = 880;
/// The size of a plot among small multiples.
const SMALL: (u32, u32) = (430, 260);
/// The font of every label: the system's sans-serif.
const FONT: &str = "sans-serif";
/// How many bins a pause histogram has.
const BINS: usize = 20;

/// The colour of grid lines.
const GRID: RGBColor = RGBColor(0xe4, 0xe7, 0xeb);
/// The width of the legend beside a timeline, in pixels.
const LEGEND_WIDTH: u32 = 190;

/// An axis label: `12`, `2.5`, `15k`, `1.5M`.
fn tick(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{}G", format_number(value / 1e9))
    } else if magnitude >= 1e6 {
        format!("{}M", format_number(value / 1e6))
    } else if magnitude >= 1e4 {
        format!("{}k", format_number(value / 1e3))
    } else {
        format_number(value)
    }
}

/// A legend drawn in its own `area`: a `title`, then a swatch and a name
/// per entry.
fn side_legend<'n>(
    area: &Area<'_>,
    title: &str,
    entries: impl IntoIterator<Item = (&'n str, RGBColor)>,
) -> Drawn {
    area.draw(&Text::new(
        title.to_owned(),
        (8, 14),
        (FONT, 13).into_font().color(&BLACK),
    ))?;
    for (i, (name, colour)) in entries.into_iter().enumerate() {
        let y = 40 + 22 * i32::try_from(i).unwrap_or(i32::MAX / 44);
        area.draw(&Rectangle::new([(8, y), (22, y + 14)], colour.filled()))?;
        area.draw(&Text::new(
            name.to_owned(),
            (30, y),
            (FONT, 13).into_font().color(&BLACK),
        ))?;
    }
    Ok(())
}

/// The `i`-th colour of the palette, round the clock.
fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draws on a white SVG canvas of `size` and returns the SVG; a drawing
/// error names the `plot`.
fn svg(
    plot: &str,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Drawn,
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present())
            .map_err(|e| ReportError::Plot {
                plot: plot.to_owned(),
                reason: e.to_string(),
            })?;
    }
    Ok(out)
}

/// A unit to show microseconds in, for values up to `max_us`: its name
/// and how many µs make one.
fn time_unit(max_us: f64) -> (&'static str, f64) {
    if max_us >= 10_000_000.0 {
        ("s", 1e6)
    } else if max_us >= 10_000.0 {
        ("ms", 1e3)
    } else {
        ("µs", 1.0)
    }
}

/// A range from 0 (or `low`) to a little above `high`, never empty.
fn span(low: f64, high: f64) -> Range<f64> {
    let high = if high > low { high } else { low + 1.0 };
    low..high + (high - low) * 0.05
}

/// The names of a categorical axis, first at the top.
fn category_label(names: &[String]) -> impl Fn(&SegmentValue<usize>) -> String + '_ {
    move |value| match value {
        SegmentValue::CenterOf(i) => names
            .len()
            .checked_sub(i + 1)
            .and_then(|at| names.get(at))
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The row of category `i` of `n`, counted from the top.
fn row(i: usize, n: usize) -> usize {
    n - 1 - i
}

/// The room a categorical axis needs for its longest name, in pixels.
fn label_room(names: &[String]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    u32::try_from(longest * 7 + 16)
        .unwrap_or(u32::MAX)
        .clamp(60, 260)
}

/// Boot phases as horizontal stacked bars, one per variant.
pub(crate) fn timeline(timeline: &Timeline) -> Result<String, ReportError> {
    let names: Vec<String> = timeline.bars.iter().map(|(v, _)| v.clone()).collect();
    let n = names.len();
    let total = |lengths: &[f64]| lengths.iter().sum::<f64>();
    let longest = timeline
        .bars
        .iter()
        .map(|(_, l)| total(l))
        .fold(0.0, f64::max);
    let (unit, per) = time_unit(longest);
    let height = 110 + 34 * u32::try_from(n).unwrap_or(u32::MAX).min(40);
    let room = label_room(&names);
    let x_desc = match timeline.shape {
        Shape::Durations => format!("time ({unit}), phases as the program measured them"),
        Shape::Marks => format!("time since the start ({unit})"),
    };
    svg("boot timeline", (WIDE, height), |root| {
        let (plot, side) = root.split_horizontally(WIDE - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(room)
            .build_cartesian_2d(span(0.0, longest / per), (0..n).into_segmented())?;
        let labels = category_label(&names);
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .y_label_formatter(&labels)
            .x_label_formatter(&|v| tick(*v))
            .x_desc(x_desc)
            .label_style((FONT, 13))
            .draw()?;
        for p in 0..timeline.phases.len() {
            let style = colour(p).filled();
            chart.draw_series(timeline.bars.iter().enumerate().map(|(i, (_, lengths))| {
                let start: f64 = lengths.iter().take(p).sum();
                let length = lengths.get(p).copied().unwrap_or(0.0);
                let y = row(i, n);
                let mut bar = Rectangle::new(
                    [
                        (start / per, SegmentValue::Exact(y)),
                        ((start + length) / per, SegmentValue::Exact(y + 1)),
                    ],
                    style,
                );
                bar.set_margin(6, 6, 0, 0);
                bar
            }))?;
        }
        let title = match timeline.shape {
            Shape::Durations => "phase",
            Shape::Marks => "phase, until its mark",
        };
        let entries = timeline.phases.iter().enumerate();
        side_legend(
            &side,
            title,
            entries.map(|(p, name)| (name.trim_end_matches("_us"), colour(p))),
        )
    })
}

/// The series legend of a chart, at `position`.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
}

/// A histogram of one variant's GC pauses, stacked by collector kind.
pub(crate) fn pause_histogram(variant: &str, kinds: &Pauses) -> Result<String, ReportError> {
    let max = kinds.values().flatten().map(|p| p[1]).fold(0.0, f64::max);
    let (unit, per) = time_unit(max);
    let width = if max > 0.0 { max / BINS as f64 } else { 1.0 };
    let bin = |pause: f64| ((pause / width) as usize).min(BINS - 1);
    let mut counts = vec![vec![0u32; BINS]; kinds.len()];
    for (k, points) in kinds.values().enumerate() {
        for p in points {
            counts[k][bin(p[1])] += 1;
        }
    }
    let tallest = (0..BINS)
        .map(|b| counts.iter().map(|c| c[b]).sum::<u32>())
        .max()
        .unwrap_or(0);
    svg("GC pause histogram", SMALL, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{variant}: pauses"), (FONT, 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(
                0.0..(width * BINS as f64) / per,
                0.0..f64::from(tallest.max(1)) * 1.1,
            )?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_labels(6)
            .disable_x_mesh()
            .x_desc(format!("pause ({unit})"))
            .y_desc("collections")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 12))
            .draw()?;
        let mut below = [0u32; BINS];
        for (k, kind) in kinds.keys().enumerate() {
            let style = colour(k).filled();
            let bars: Vec<Rectangle<(f64, f64)>> = (0..BINS)
                .filter(|&b| counts[k][b] > 0)
                .map(|b| {
                    let (from, to) = (below[b], below[b] + counts[k][b]);
                    below[b] = to;
                    let x = b as f64 * width / per;
                    let mut bar = Rectangle::new(
                        [(x, f64::from(from)), (x + width / per, f64::from(to))],
                        style,
                    );
                    bar.set_margin(0, 0, 1, 1);
                    bar
                })
                .collect();
            chart
                .draw_series(bars)?
                .label(kind.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// One variant's GC pauses over the run: a stem per collection at its
/// start, as tall as its pause, coloured by collector kind.
pub(crate) fn pause_timeline(variant: &str, kinds: &Pauses) -> Result<String, ReportError> {
    let points = || kinds.values().flatten();
    let last = points().map(|p| p[0]).fold(0.0, f64::max);
    let tallest = points().map(|p| p[1]).fold(0.0, f64::max);
    let (x_unit, x_per) = time_unit(last);
    let (y_unit, y_per) = time_unit(tallest);
    svg("GC pause timeline", SMALL, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{variant}: pauses over time"), (FONT, 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(span(0.0, last / x_per), span(0.0, tallest / y_per))?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_labels(6)
            .x_desc(format!("since the runtime started ({x_unit})"))
            .y_desc(format!("pause ({y_unit})"))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 12))
            .draw()?;
        for (k, (kind, points)) in kinds.iter().enumerate() {
            let style = colour(k);
            let at = |p: &[f64; 2]| (p[0] / x_per, p[1] / y_per);
            chart.draw_series(
                points
                    .iter()
                    .map(|p| PathElement::new(vec![(at(p).0, 0.0), at(p)], style.stroke_width(1))),
            )?;
            chart
                .draw_series(points.iter().map(|p| Circle::new(at(p), 3, style.filled())))?
                .label(kind.as_str())
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, style.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// The distribution of round trips, one line per variant: the share of
/// messages answered within each latency.
pub(crate) fn latency_cdf(variants: &[(String, Vec<f64>)]) -> Result<String, ReportError> {
    let max = variants
        .iter()
        .filter_map(|(_, v)| v.last().copied())
        .fold(0.0, f64::max);
    let (unit, per) = time_unit(max);
    svg("latency CDF", (WIDE, 380), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(span(0.0, max / per), 0.0..100.0)?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc(format!("round trip ({unit})"))
            .y_desc("messages answered within (%)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 13))
            .draw()?;
        for (i, (variant, sorted)) in variants.iter().enumerate() {
            let n = sorted.len() as f64;
            let style = colour(i).stroke_width(2);
            // A step up at each value: (v, before) then (v, after).
            let mut steps = Vec::with_capacity(sorted.len() * 2);
            for (k, v) in sorted.iter().enumerate() {
                steps.push((v / per, k as f64 / n * 100.0));
                steps.push((v / per, (k + 1) as f64 / n * 100.0));
            }
            chart
                .draw_series(LineSeries::new(steps, style))?
                .label(variant.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// One trend of one variant: each run's samples and its fitted line.
pub(crate) fn trend(trend: &Trend) -> Result<String, ReportError> {
    let all = || trend.runs.iter().flat_map(|((_, p), f)| p.iter().chain(f));
    let (x0, x1) = all().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p[0]), hi.max(p[0]))
    });
    let (y0, y1) = all().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p[1]), hi.max(p[1]))
    });
    let (x0, y0) = (x0.min(x1), y0.min(y1));
    let pad = (y1 - y0).max(1.0) * 0.08;
    svg("heap trend", SMALL, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{}: {}", trend.variant, trend.metric), (FONT, 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(span(x0, x1), (y0 - pad)..(y1 + pad))?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_labels(6)
            .x_desc("x (as sampled)")
            .y_desc("y (as sampled)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 12))
            .draw()?;
        for (i, ((_, points), fit)) in trend.runs.iter().enumerate() {
            let first = i == 0;
            let samples = chart.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p[0], p[1]), 2, colour(0).filled())),
            )?;
            if first {
                samples
                    .label("samples")
                    .legend(|(x, y)| Circle::new((x + 6, y), 3, colour(0).filled()));
            }
            let line = chart.draw_series(LineSeries::new(
                fit.iter().map(|p| (p[0], p[1])),
                colour(2).stroke_width(2),
            ))?;
            if first {
                line.label("fitted line").legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour(2).stroke_width(2))
                });
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Success rates with their 95% intervals, one row per variant.
pub(crate) fn success_rates(rates: &[Rate]) -> Result<String, ReportError> {
    let names: Vec<String> = rates.iter().map(|r| r.variant.clone()).collect();
    let n = names.len();
    let lowest = rates.iter().map(|r| r.low).fold(100.0, f64::min);
    let from = ((lowest - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
    let height = 110 + 40 * u32::try_from(n).unwrap_or(u32::MAX).min(40);
    let room = label_room(&names);
    svg("success rates", (WIDE, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(room)
            .build_cartesian_2d(from..100.5, (0..n).into_segmented())?;
        let labels = category_label(&names);
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .y_label_formatter(&labels)
            .x_label_formatter(&|v| tick(*v))
            .x_desc("trials that left a working device (%), with the 95% Wilson interval")
            .label_style((FONT, 13))
            .draw()?;
        let centre = |i: usize| SegmentValue::CenterOf(row(i, n));
        let whisker = colour(0).stroke_width(2);
        chart.draw_series(rates.iter().enumerate().map(|(i, r)| {
            PathElement::new(vec![(r.low, centre(i)), (r.high, centre(i))], whisker)
        }))?;
        for end in [|r: &Rate| r.low, |r: &Rate| r.high] {
            chart.draw_series(rates.iter().enumerate().map(|(i, r)| {
                let y = row(i, n);
                let mut cap = Rectangle::new(
                    [
                        (end(r), SegmentValue::Exact(y)),
                        (end(r), SegmentValue::Exact(y + 1)),
                    ],
                    whisker,
                );
                cap.set_margin(12, 12, 0, 0);
                cap
            }))?;
        }
        chart.draw_series(
            rates
                .iter()
                .enumerate()
                .map(|(i, r)| Circle::new((r.percent, centre(i)), 5, colour(2).filled())),
        )?;
        chart.draw_series(rates.iter().enumerate().map(|(i, r)| {
            let text = format!("{}%", format_number((r.percent * 100.0).round() / 100.0));
            EmptyElement::at((r.percent, centre(i)))
                + Text::new(text, (-12, -22), (FONT, 12).into_font().color(&BLACK))
        }))?;
        Ok(())
    })
}
