//! A page as a person sees it: Debian's Chromium, headless, takes a screenshot of an HTML file and
//! prints it to PDF; `pdftotext -layout` (poppler-utils) reads the PDF back. Both are installed by
//! `scripts/lib.sh` (`install_chromium`). No network: the flags switch off everything Chromium
//! would fetch on its own, and the page is a local file.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The screenshot's width: a laptop's window.
pub const WINDOW_WIDTH: u32 = 1280;
/// How long one Chromium run may take before the test fails.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// What Chromium made of a page.
#[derive(Debug)]
pub struct RenderedPage {
    /// The screenshot (`<out_dir>/<page>.png`).
    pub png: PathBuf,
    /// Its decoded size.
    pub width: u32,
    pub height: u32,
    /// Pixels that are not white (any channel under 250).
    pub non_white_pixels: usize,
    /// The box holding every non-white pixel: its left and right columns, its last row.
    pub content_left: u32,
    pub content_right: u32,
    pub content_bottom: u32,
    /// The printed page (`<out_dir>/<page>.pdf`) and its text, as `pdftotext -layout` reads it.
    pub pdf: PathBuf,
    pub pdf_text: String,
    /// How many pages the print has.
    pub pdf_pages: usize,
    /// How long the two Chromium runs and pdftotext took.
    pub elapsed: Duration,
    /// The screenshot's pixels, RGB, row by row.
    rgb: Vec<[u8; 3]>,
}

impl RenderedPage {
    /// How many pixels are `colour` ("#rrggbb"), each channel within `tolerance`.
    pub fn pixels_of(&self, colour: &str, tolerance: u8) -> usize {
        let wanted = rgb_of(colour);
        self.rgb
            .iter()
            .filter(|pixel| pixel.iter().zip(wanted).all(|(have, want)| have.abs_diff(want) <= tolerance))
            .count()
    }

    /// Whether the whole page fitted in the window: the last rows of the screenshot are blank.
    pub fn fitted(&self) -> bool {
        self.content_bottom + 8 < self.height
    }

    /// The text of the print with runs of white space as one space: a phrase the layout wrapped
    /// or spaced out still reads as one.
    pub fn pdf_words(&self) -> String {
        self.pdf_text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// "#rrggbb" as bytes.
pub fn rgb_of(colour: &str) -> [u8; 3] {
    let hex = colour.trim_start_matches('#');
    let channel = |at: usize| u8::from_str_radix(hex.get(at..at + 2).unwrap_or("00"), 16).expect("a colour as #rrggbb");
    [channel(0), channel(2), channel(4)]
}

/// Renders `html` with Chromium, headless: a screenshot at [`WINDOW_WIDTH`] wide and tall enough
/// for the page, and a print to PDF (no header or footer), both under `out_dir`, named after the
/// page; then reads the PDF's text back with `pdftotext -layout`.
pub fn render_page(html: &Path, out_dir: &Path) -> RenderedPage {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/lib.sh install_chromium (apt-get install chromium poppler-utils)"
    );
    std::fs::create_dir_all(out_dir).expect("output directory");
    let html = html.canonicalize().expect("the page exists");
    let out_dir = out_dir.canonicalize().expect("output directory");
    let name = html.file_stem().and_then(|stem| stem.to_str()).unwrap_or("page").to_string();
    let (png, pdf) = (out_dir.join(format!("{name}.png")), out_dir.join(format!("{name}.pdf")));
    for stale in [&png, &pdf] {
        let _ = std::fs::remove_file(stale);
    }
    let text = std::fs::read_to_string(&html).expect("the page is text");
    let url = format!("file://{}", html.display());
    let started = Instant::now();

    let height = window_height(&text);
    chromium(&out_dir, &name, "screenshot", &[format!("--screenshot={}", png.display())], height, &url);
    chromium(
        &out_dir,
        &name,
        "print",
        &[format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer".to_string()],
        height,
        &url,
    );
    assert!(png.exists(), "Chromium wrote no screenshot ({})", png.display());
    assert!(pdf.exists(), "Chromium wrote no PDF ({})", pdf.display());

    let output = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs (poppler-utils: scripts/lib.sh install_chromium)");
    assert!(output.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&output.stderr));
    let pdf_text = String::from_utf8_lossy(&output.stdout).into_owned();
    std::fs::write(out_dir.join(format!("{name}.pdf.txt")), &pdf_text).expect("write the PDF's text");
    // pdftotext ends every page with a form feed.
    let pdf_pages = pdf_text.matches('\u{c}').count();

    let (width, height, rgb) = decode(&png);
    let blank = |pixel: &[u8; 3]| pixel.iter().all(|channel| *channel >= 250);
    let (mut left, mut right, mut bottom, mut non_white) = (width, 0, 0, 0);
    for (index, pixel) in rgb.iter().enumerate() {
        if !blank(pixel) {
            let (x, y) = ((index % width as usize) as u32, (index / width as usize) as u32);
            (left, right, bottom) = (left.min(x), right.max(x), bottom.max(y));
            non_white += 1;
        }
    }
    RenderedPage {
        png,
        width,
        height,
        non_white_pixels: non_white,
        content_left: left,
        content_right: right,
        content_bottom: bottom,
        pdf,
        pdf_text,
        pdf_pages,
        elapsed: started.elapsed(),
        rgb,
    }
}

/// A window tall enough for the page: its rows, charts, list items and sections added up (the
/// test checks that it was: [`RenderedPage::fitted`]).
fn window_height(html: &str) -> u32 {
    let count = |what: &str| html.matches(what).count() as u32;
    let estimate = 600 + 60 * count("<tr") + 420 * count("<svg") + 24 * count("<li") + 300 * count("<section");
    estimate.clamp(1200, 16_000)
}

/// One headless Chromium run of `url` with `extra` flags, in a fresh profile; its output kept in
/// `<out_dir>/<name>.<what>.log`.
fn chromium(out_dir: &Path, name: &str, what: &str, extra: &[String], height: u32, url: &str) {
    let profile = std::env::temp_dir().join(format!("dr-tests-chromium-{}", crate::unique_suffix()));
    std::fs::create_dir_all(&profile).expect("a fresh Chromium profile");
    let log_path = out_dir.join(format!("{name}.{what}.log"));
    let log = File::create(&log_path).expect("Chromium's log");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={WINDOW_WIDTH},{height}"))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("Chromium's log"))
        .stderr(log)
        .spawn()
        .expect("Chromium starts");
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("Chromium's status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&profile);
            panic!("Chromium ({what}) took over {CHROMIUM_TIMEOUT:?}: see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "Chromium ({what}) failed with {status}: see {}", log_path.display());
}

/// The screenshot's size and its pixels as RGB.
fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = BufReader::new(File::open(path).expect("the screenshot"));
    // A tall screenshot is more than the default 64 MiB decoded.
    let mut decoder = png::Decoder::new_with_limits(file, png::Limits { bytes: 512 << 20 });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a PNG of a sane size")];
    let info = reader.next_frame(&mut buffer).expect("the PNG decodes");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Indexed => panic!("normalize_to_color8 expands a palette"),
    };
    let pixels = buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|pixel| match channels {
            1 | 2 => [pixel[0]; 3],
            _ => [pixel[0], pixel[1], pixel[2]],
        })
        .collect();
    (info.width, info.height, pixels)
}
