//! What every PNG plot of spanwatch shares (plotters' bitmap backend): the
//! font, the canvas and the errors. The plots themselves sit with what they
//! show: the training plots in `train::plots`, the eval timeline in
//! `eval::timeline`.
//!
//! Text is drawn through `ab_glyph` from a TrueType file read at run time
//! (DejaVu Sans, Debian's `fonts-dejavu-core`), so no system font library
//! (fontconfig, freetype) is linked.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea, WHITE};
use plotters::style::{FontStyle, register_font};

/// Where DejaVu Sans is installed, tried in order: Debian and Ubuntu
/// (`fonts-dejavu-core`), Fedora (`dejavu-sans-fonts`), Arch (`ttf-dejavu`),
/// Alpine (`font-dejavu`), openSUSE (`dejavu-fonts`).
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/DejaVuSans.ttf",
];
/// The Debian package that installs the font.
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";
/// The family name the font is registered under; every plot's text uses it.
pub const FONT: &str = "sans-serif";
/// Largest font file read (DejaVu Sans is about 0.7 MB).
pub const MAX_FONT_BYTES: u64 = 32 << 20;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(
        "no font for the plots: none of {} exists; install DejaVu Sans (Debian/Ubuntu: apt-get install {FONT_PACKAGE})",
        tried.join(", ")
    )]
    NoFont { tried: Vec<String> },
    #[error("cannot read the font {}: {problem}", path.display())]
    ReadFont { path: PathBuf, problem: String },
    #[error("{} is not a TrueType or OpenType font; reinstall {FONT_PACKAGE}", path.display())]
    BadFont { path: PathBuf },
    #[error("cannot write the plot {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw the plot {}: {problem}", path.display())]
    Draw { path: PathBuf, problem: String },
}

/// The first of `candidates` that is a file.
pub fn find_font<'a>(candidates: &[&'a str]) -> Result<&'a Path, PlotError> {
    candidates
        .iter()
        .map(|c| Path::new(*c))
        .find(|p| p.is_file())
        .ok_or_else(|| PlotError::NoFont {
            tried: candidates.iter().map(|c| c.to_string()).collect(),
        })
}

/// Reads a font file (bounded by [`MAX_FONT_BYTES`]).
fn read_font(path: &Path) -> Result<Vec<u8>, PlotError> {
    let fail = |problem: String| PlotError::ReadFont {
        path: path.to_path_buf(),
        problem,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| fail(e.to_string()))?
        .len();
    if len > MAX_FONT_BYTES {
        return Err(fail(format!(
            "{len} bytes, more than the {MAX_FONT_BYTES} a font may have"
        )));
    }
    std::fs::read(path).map_err(|e| fail(e.to_string()))
}

/// Whether the font has been registered with plotters (once a process).
static REGISTERED: Mutex<bool> = Mutex::new(false);

/// Finds the font in [`FONT_PATHS`] and registers it as [`FONT`], once a
/// process. Commands that plot call it before their long work, so a missing
/// font is reported at once.
pub fn ensure_font() -> Result<(), PlotError> {
    let mut registered = REGISTERED.lock().unwrap_or_else(PoisonError::into_inner);
    if *registered {
        return Ok(());
    }
    register(find_font(FONT_PATHS)?)?;
    *registered = true;
    Ok(())
}

/// Reads the font at `path` and registers it as [`FONT`].
fn register(path: &Path) -> Result<(), PlotError> {
    // plotters keeps a `'static` reference to the font's bytes: they live
    // as long as the process (read once, a few hundred KB).
    let bytes: &'static [u8] = Box::leak(read_font(path)?.into_boxed_slice());
    register_font(FONT, FontStyle::Normal, bytes).map_err(|_| PlotError::BadFont {
        path: path.to_path_buf(),
    })
}

/// A white canvas of `size` pixels.
pub type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws a PNG of `size` (width, height) pixels at `path`: registers the
/// font, hands `draw` a white canvas and writes the file.
pub fn png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Canvas) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), PlotError> {
    ensure_font()?;
    // The encoder's own error for a path it cannot write is hard to read.
    std::fs::File::create(path).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let fail = |problem: &dyn Display| PlotError::Draw {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    draw(&root).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_names_the_paths_tried_and_the_package() {
        let e =
            find_font(&["/nonexistent/a.ttf", "/nonexistent/b.ttf"]).expect_err("no such files");
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/a.ttf, /nonexistent/b.ttf"),
            "{text}"
        );
        assert!(text.contains("apt-get install fonts-dejavu-core"), "{text}");
    }

    #[test]
    fn the_first_existing_font_is_taken() {
        let dir = std::env::temp_dir().join(format!("spanwatch-font-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let second = dir.join("b.ttf");
        std::fs::write(&second, b"x").expect("write");
        let second = second.to_str().expect("utf-8 path");
        let found = find_font(&["/nonexistent/a.ttf", second, "/nonexistent/c.ttf"]);
        assert_eq!(found.expect("found").to_str(), Some(second));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_is_no_font_is_refused_by_name() {
        let path =
            std::env::temp_dir().join(format!("spanwatch-notafont-{}.ttf", std::process::id()));
        std::fs::write(&path, b"not a font, only text").expect("write");
        let e = register(&path).expect_err("not a font");
        assert!(
            matches!(&e, PlotError::BadFont { path: p } if *p == path),
            "{e}"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_unwritable_plot_names_its_path() {
        let path = Path::new("/nonexistent-dir/plot.png");
        let e = png(path, (20, 10), |_| Ok(())).expect_err("directory missing");
        assert!(
            e.to_string()
                .starts_with("cannot write the plot /nonexistent-dir/plot.png: "),
            "{e}"
        );
    }
}
