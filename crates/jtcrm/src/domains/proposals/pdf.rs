//! The PDF of a document, laid out from the same structured text as the HTML page (see
//! [`super::render::blocks`]) with krilla: A4, DejaVu Sans (bundled, full Latin accents), the
//! tenant's name in the header of every page, "Página N de M" in the footer, and the items table
//! breaking across pages with its header row repeated. Rendering is CPU work: callers use
//! [`render_async`], which runs it on the blocking pool with a timeout.

use std::sync::Arc;
use std::time::Duration;

use jtcrm_types::dto::proposals::ProposalItem;
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};

use super::render::{self, Block, ITEM_HEADERS, Totals};
use jtcrm_kernel::error::{AppError, AppResult};

static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Longest a PDF may take to render.
pub const TIMEOUT: Duration = Duration::from_secs(20);

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 50.0;
const TOP: f32 = 80.0;
const BOTTOM: f32 = PAGE_H - 60.0;
const BODY: f32 = 10.0;
const COLS: [f32; 5] = [205.0, 40.0, 85.0, 85.0, 80.0];

/// Glyph advance widths, for measuring and wrapping.
struct Metrics<'a> {
    face: ttf_parser::Face<'a>,
    upem: f32,
}

impl<'a> Metrics<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        let face = ttf_parser::Face::parse(data, 0).ok()?;
        let upem = f32::from(face.units_per_em());
        Some(Self { face, upem })
    }

    fn width(&self, s: &str, size: f32) -> f32 {
        let units: f32 = s
            .chars()
            .map(|c| {
                self.face
                    .glyph_index(c)
                    .and_then(|g| self.face.glyph_hor_advance(g))
                    .map(f32::from)
                    .unwrap_or(self.upem * 0.5)
            })
            .sum();
        units * size / self.upem
    }

    /// Greedy word wrap into lines no wider than `max`. A word wider than a line is cut.
    fn wrap(&self, text: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = vec![];
        let mut cur = String::new();
        for word in text.split_whitespace() {
            let candidate = if cur.is_empty() {
                word.to_string()
            } else {
                format!("{cur} {word}")
            };
            if self.width(&candidate, size) <= max {
                cur = candidate;
                continue;
            }
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            // Cut over-long words.
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if self.width(&piece, size) > max {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            cur = piece;
        }
        if !cur.is_empty() {
            lines.push(cur);
        }
        if lines.is_empty() {
            lines.push(String::new());
        }
        lines
    }
}

#[derive(Debug, Clone)]
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        gray: u8,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
}

struct Layout<'a> {
    regular: Metrics<'a>,
    bold: Metrics<'a>,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout<'_> {
    fn m(&self, bold: bool) -> &Metrics<'_> {
        if bold { &self.bold } else { &self.regular }
    }

    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(vec![]);
        }
        let n = self.pages.len() - 1;
        &mut self.pages[n]
    }

    fn new_page(&mut self) {
        self.pages.push(vec![]);
        self.y = TOP;
    }

    fn ensure(&mut self, h: f32) {
        if self.y + h > BOTTOM {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, text: String) {
        let y = self.y;
        self.page().push(Op::Text {
            x,
            y,
            size,
            bold,
            text,
        });
    }

    fn paragraph(&mut self, text: &str, size: f32, bold: bool, indent: f32, before: f32) {
        let lh = size * 1.4;
        let lines = self
            .m(bold)
            .wrap(text, size, PAGE_W - 2.0 * MARGIN - indent);
        self.y += before;
        for l in lines {
            self.ensure(lh);
            self.y += lh;
            self.text(MARGIN + indent, size, bold, l);
        }
    }

    /// A bullet: "•" then the text, its wrapped lines aligned with the text (hanging indent).
    fn bullet(&mut self, text: &str, size: f32, indent: f32) {
        let lh = size * 1.4;
        let hang = self.regular.width("• ", size);
        let lines = self
            .regular
            .wrap(text, size, PAGE_W - 2.0 * MARGIN - indent - hang);
        for (i, l) in lines.into_iter().enumerate() {
            self.ensure(lh);
            self.y += lh;
            if i == 0 {
                self.text(MARGIN + indent, size, false, "•".to_string());
            }
            self.text(MARGIN + indent + hang, size, false, l);
        }
    }

    fn table_header(&mut self) {
        let h = 18.0;
        self.ensure(h + 16.0);
        let y = self.y;
        self.page().push(Op::Rect {
            x: MARGIN,
            y,
            w: COLS.iter().sum(),
            h,
            gray: 225,
        });
        self.cells(&ITEM_HEADERS.map(String::from), true, h);
    }

    /// One row of cells starting at `self.y` (wrapping the first column), advancing `y`.
    fn cells(&mut self, cells: &[String; 5], bold: bool, min_h: f32) {
        let size = 8.5;
        let lh = size * 1.35;
        let name_lines = self.m(bold).wrap(&cells[0], size, COLS[0] - 8.0);
        let h = (lh * name_lines.len() as f32 + 6.0).max(min_h);
        let top = self.y;
        let mut x = MARGIN;
        for (i, w) in COLS.iter().enumerate() {
            if i == 0 {
                for (k, l) in name_lines.iter().enumerate() {
                    self.y = top + 4.0 + lh * (k as f32 + 1.0) - 2.0;
                    self.text(x + 4.0, size, bold, l.clone());
                }
            } else {
                let tw = self.m(bold).width(&cells[i], size);
                self.y = top + 4.0 + lh - 2.0;
                self.text(x + w - 4.0 - tw, size, bold, cells[i].clone());
            }
            x += w;
        }
        self.y = top + h;
        let y = self.y;
        let right = MARGIN + COLS.iter().sum::<f32>();
        self.page().push(Op::Line {
            x1: MARGIN,
            y1: y,
            x2: right,
            y2: y,
        });
    }

    fn items(&mut self, items: &[ProposalItem], totals: &Totals) {
        self.y += 6.0;
        self.table_header();
        for it in items {
            let row = render::item_row(it);
            // Measure first: a row that does not fit moves to the next page with the header.
            let lines = self.regular.wrap(&row[0], 8.5, COLS[0] - 8.0).len();
            let h = 8.5 * 1.35 * lines as f32 + 6.0;
            if self.y + h > BOTTOM {
                self.new_page();
                self.table_header();
            }
            self.cells(&row, false, 0.0);
        }
        let total = [
            "Totais".to_string(),
            String::new(),
            String::new(),
            render::money(totals.mrr_cents),
            render::money(totals.setup_cents),
        ];
        if self.y + 18.0 > BOTTOM {
            self.new_page();
            self.table_header();
        }
        self.cells(&total, true, 18.0);
        self.y += 6.0;
    }
}

fn fill(gray: u8) -> Fill {
    Fill {
        paint: rgb::Color::new(gray, gray, gray).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn draw(surface: &mut Surface<'_>, op: &Op, regular: &Font, bold: &Font) {
    match op {
        Op::Text {
            x,
            y,
            size,
            bold: b,
            text,
        } => {
            if text.is_empty() {
                return;
            }
            surface.set_fill(Some(fill(20)));
            let font = if *b { bold.clone() } else { regular.clone() };
            surface.draw_text(
                Point::from_xy(*x, *y),
                font,
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rect { x, y, w, h, gray } => {
            let mut pb = PathBuilder::new();
            if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                pb.push_rect(r);
            }
            if let Some(p) = pb.finish() {
                surface.set_stroke(None);
                surface.set_fill(Some(fill(*gray)));
                surface.draw_path(&p);
            }
        }
        Op::Line { x1, y1, x2, y2 } => {
            let mut pb = PathBuilder::new();
            pb.move_to(*x1, *y1);
            pb.line_to(*x2, *y2);
            if let Some(p) = pb.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: rgb::Color::new(180, 180, 180).into(),
                    width: 0.5,
                    ..Default::default()
                }));
                surface.draw_path(&p);
                surface.set_stroke(None);
            }
        }
    }
}

/// Lays out and writes the PDF (blocking), without a logo.
pub fn render(
    company: &str,
    number: &str,
    content: &str,
    items: &[ProposalItem],
    totals: &Totals,
) -> Result<Vec<u8>, String> {
    render_with_logo(company, None, number, content, items, totals)
}

/// The logo as a PDF image with its drawn size (at most 120 × 28 pt, aspect kept).
fn logo_image(bytes: &[u8]) -> Option<(krilla::image::Image, f32, f32)> {
    let data: krilla::Data = bytes.to_vec().into();
    let img = if bytes.starts_with(b"\x89PNG") {
        krilla::image::Image::from_png(data, true)?
    } else {
        krilla::image::Image::from_jpeg(data, true)?
    };
    let (w, h) = img.size();
    if w == 0 || h == 0 {
        return None;
    }
    let scale = (28.0 / h as f32).min(120.0 / w as f32);
    Some((img, w as f32 * scale, h as f32 * scale))
}

/// Lays out and writes the PDF (blocking), with the tenant's logo (PNG or JPEG) at the top left of
/// every page when given. A logo the PDF writer cannot embed is left out rather than failing.
pub fn render_with_logo(
    company: &str,
    logo: Option<&[u8]>,
    number: &str,
    content: &str,
    items: &[ProposalItem],
    totals: &Totals,
) -> Result<Vec<u8>, String> {
    match logo {
        Some(l) => match write(company, logo_image(l), number, content, items, totals) {
            Ok(b) => Ok(b),
            Err(e) => {
                tracing::warn!(error = %e, "logo não incluído no PDF");
                write(company, None, number, content, items, totals)
            }
        },
        None => write(company, None, number, content, items, totals),
    }
}

fn write(
    company: &str,
    logo: Option<(krilla::image::Image, f32, f32)>,
    number: &str,
    content: &str,
    items: &[ProposalItem],
    totals: &Totals,
) -> Result<Vec<u8>, String> {
    let (Some(rm), Some(bm)) = (Metrics::new(REGULAR), Metrics::new(BOLD)) else {
        return Err("fonte inválida".into());
    };
    let mut l = Layout {
        regular: rm,
        bold: bm,
        pages: vec![vec![]],
        y: TOP,
    };
    for b in render::blocks(content) {
        match b {
            Block::Title(t) => l.paragraph(&t, 16.0, true, 0.0, 4.0),
            Block::Heading(t) => {
                l.ensure(40.0);
                l.paragraph(&t, 12.0, true, 0.0, 6.0)
            }
            Block::Para(t) => l.paragraph(&t, BODY, false, 0.0, 0.0),
            Block::Bullet(t) => l.bullet(&t, BODY, 10.0),
            Block::Gap => l.y += 6.0,
            Block::Items => l.items(items, totals),
        }
    }
    let font = |bytes: &'static [u8]| {
        let data: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(bytes);
        Font::new(data.into(), 0).ok_or_else(|| "fonte inválida".to_string())
    };
    let (regular, bold) = (font(REGULAR)?, font(BOLD)?);
    let mut doc = Document::new();
    doc.set_metadata(
        Metadata::new()
            .title(format!("{number} — {company}"))
            .language("pt-BR".into())
            .creator("jtcrm".into()),
    );
    let total = l.pages.len();
    for (i, ops) in l.pages.iter().enumerate() {
        let mut page = doc.start_page_with(PageSettings::new(PAGE_W, PAGE_H));
        let mut s = page.surface();
        // Header: the logo, the company, the document number, a rule.
        let mut name_x = MARGIN;
        if let Some((img, w, h)) = &logo
            && let Some(size) = Size::from_wh(*w, *h)
        {
            s.push_transform(&Transform::from_translate(MARGIN, 46.0 - h));
            s.draw_image(img.clone(), size);
            s.pop();
            name_x = MARGIN + w + 8.0;
        }
        let header = [
            Op::Text {
                x: name_x,
                y: 40.0,
                size: 11.0,
                bold: true,
                text: company.to_string(),
            },
            Op::Text {
                x: PAGE_W - MARGIN - l.regular.width(number, 9.0),
                y: 40.0,
                size: 9.0,
                bold: false,
                text: number.to_string(),
            },
            Op::Line {
                x1: MARGIN,
                y1: 50.0,
                x2: PAGE_W - MARGIN,
                y2: 50.0,
            },
        ];
        let footer_text = format!("Página {} de {}", i + 1, total);
        let footer = Op::Text {
            x: (PAGE_W - l.regular.width(&footer_text, 8.0)) / 2.0,
            y: PAGE_H - 30.0,
            size: 8.0,
            bold: false,
            text: footer_text,
        };
        for op in header
            .iter()
            .chain(ops.iter())
            .chain(std::iter::once(&footer))
        {
            draw(&mut s, op, &regular, &bold);
        }
        s.finish();
        page.finish();
    }
    doc.finish().map_err(|e| format!("{e:?}"))
}

/// [`render`] on the blocking pool, bounded by [`TIMEOUT`].
pub async fn render_async(
    company: String,
    logo: Option<Vec<u8>>,
    number: String,
    content: String,
    items: Vec<ProposalItem>,
    totals: Totals,
) -> AppResult<Vec<u8>> {
    let work = tokio::task::spawn_blocking(move || {
        render_with_logo(
            &company,
            logo.as_deref(),
            &number,
            &content,
            &items,
            &totals,
        )
    });
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(e))) => Err(AppError::internal_msg(format!("PDF: {e}"))),
        Ok(Err(e)) => Err(AppError::internal(e)),
        Err(_) => Err(AppError::unavailable(anyhow::anyhow!(
            "a geração do PDF excedeu o tempo limite"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_many_pages_with_numbers() {
        let items: Vec<ProposalItem> = (0..80)
            .map(|i| ProposalItem {
                product_id: None,
                name: format!("Serviço de conexão número {i} — instalação e configuração"),
                sku: None,
                quantity: 1,
                monthly_price_cents: 10_000,
                setup_price_cents: 0,
                discount_percent: 0.0,
                monthly_total_cents: 10_000,
                setup_total_cents: 0,
            })
            .collect();
        let totals = Totals {
            mrr_cents: 800_000,
            setup_cents: 0,
            tcv_cents: 800_000,
        };
        let pdf = render(
            "Ação Telecom",
            "PROP-2026-0001",
            "# Título\n[[itens]]\nFim",
            &items,
            &totals,
        )
        .unwrap();
        assert!(pdf.starts_with(b"%PDF"));
    }
}
