//! The fake's QR code: real, so that `--dev` shows what an operator would see.

/// What the fake's QR code says when scanned: nothing WhatsApp would take.
pub const DEV_QR_TEXT: &str = "otp-service --dev: this would link a WhatsApp session";

/// The image type the fake's `getQrStaticSession` answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QrFormat {
    #[default]
    Png,
    /// As a gateway might; the service must serve it without letting it run scripts.
    Svg,
}

/// `DEV_QR_TEXT` as a PNG: 8 pixels a module, with the standard 4-module quiet zone.
pub fn qr_png() -> Vec<u8> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(DEV_QR_TEXT).expect("the text fits in a QR code");
    let modules = code.width();
    let size = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; size * size];
    for (i, colour) in code.to_colors().into_iter().enumerate() {
        if colour == qrcode::Color::Dark {
            let (x, y) = ((i % modules + QUIET) * SCALE, (i / modules + QUIET) * SCALE);
            for row in y..y + SCALE {
                pixels[row * size + x..row * size + x + SCALE].fill(0);
            }
        }
    }
    let mut png = Vec::new();
    let side = u32::try_from(size).expect("a QR code is small");
    let mut encoder = png::Encoder::new(&mut png, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(&pixels).expect("PNG data");
    writer.finish().expect("PNG end");
    png
}

/// `DEV_QR_TEXT` as an SVG, with a script in it that must never run.
pub fn qr_svg() -> String {
    let code = qrcode::QrCode::new(DEV_QR_TEXT).expect("the text fits in a QR code");
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    svg.replacen("</svg>", "<script>document.title = 'scripted'</script></svg>", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_a_qr_code_sized_image() {
        let png = qr_png();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("a PNG");
        let info = reader.info();
        assert!(
            info.width >= 100 && info.width == info.height,
            "{}x{}",
            info.width,
            info.height
        );
    }
}
