//! The co-op's till in the demo: the member's screen shows the redemption
//! token's QR code (drawn here from the SVG the node returned), and the till
//! reads the code back with a QR decoder (`rqrr`), as a scanner would.

/// The QR code's modules (true = dark), row by row, from the node's SVG: a
/// `viewBox="0 0 N N"` and one `M{x} {y}h1v1h-1z` square per dark module.
pub(super) fn modules(svg: &str) -> Option<Vec<Vec<bool>>> {
    let size: usize = svg
        .split("viewBox=\"0 0 ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    if !(21..=200).contains(&size) {
        return None;
    }
    let path = svg.split(" d=\"").nth(1)?.split('"').next()?;
    let mut grid = vec![vec![false; size]; size];
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let (x, y) = square.strip_suffix("h1v1h-1z")?.split_once(' ')?;
        let (x, y): (usize, usize) = (x.parse().ok()?, y.parse().ok()?);
        *grid.get_mut(y)?.get_mut(x)? = true;
    }
    Some(grid)
}

/// The code as terminal text, two module rows per line, light modules as
/// blocks (for a dark terminal; the SVG's quiet zone comes with it).
pub(super) fn draw(grid: &[Vec<bool>]) -> Vec<String> {
    grid.chunks(2)
        .map(|rows| {
            let top = &rows[0];
            let bottom = rows.get(1);
            (0..top.len())
                .map(|x| {
                    let t = !top[x];
                    let b = bottom.is_some_and(|r| !r[x]);
                    match (t, b) {
                        (true, true) => '█',
                        (true, false) => '▀',
                        (false, true) => '▄',
                        (false, false) => ' ',
                    }
                })
                .collect()
        })
        .collect()
}

/// What a scanner reads from the code: the modules drawn 4 pixels each and
/// decoded.
pub(super) fn scan(grid: &[Vec<bool>]) -> Option<String> {
    const PX: usize = 4;
    let size = grid.len();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(size * PX, size * PX, |x, y| {
        if grid[y / PX][x / PX] {
            0
        } else {
            255
        }
    });
    let grids = img.detect_grids();
    let (_, text) = grids.first()?.decode().ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_till_reads_back_what_the_node_drew() {
        let token = "7KQ2-M9XH-C3DF-0RTV-A8BE";
        let svg = me2b_server::qr_svg(token).unwrap();
        let grid = modules(&svg).unwrap();
        assert_eq!(scan(&grid).as_deref(), Some(token));
        let lines = draw(&grid);
        assert_eq!(lines.len(), grid.len().div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == grid.len()));
        assert_eq!(modules("<svg/>"), None);
        assert_eq!(
            modules("<svg viewBox=\"0 0 29 29\"><path d=\"M99 0h1v1h-1z\"/></svg>"),
            None
        );
    }
}
