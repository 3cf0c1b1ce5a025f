//! A build badge: `build | passing` (green), `failing` (red) or `unknown` (grey), as an SVG of
//! its own, drawn here, for a README.

use super::escape;

/// What a badge says of a branch's latest ended build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    Passing,
    Failing,
    Unknown,
}

impl Badge {
    pub fn word(self) -> &'static str {
        match self {
            Badge::Passing => "passing",
            Badge::Failing => "failing",
            Badge::Unknown => "unknown",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Badge::Passing => "#2da44e",
            Badge::Failing => "#cf222e",
            Badge::Unknown => "#8c959f",
        }
    }
}

/// The badge's SVG: 6.5 px a character, as the usual badges measure.
pub fn badge_svg(badge: Badge) -> String {
    let (label, word) = ("build", badge.word());
    let width = |text: &str| 10 + (text.len() as u32 * 13).div_ceil(2);
    let (left, right) = (width(label), width(word));
    let total = left + right;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" \
         aria-label=\"{label}: {word}\"><title>{label}: {word}</title>\
         <rect width=\"{left}\" height=\"20\" fill=\"#555\"/>\
         <rect x=\"{left}\" width=\"{right}\" height=\"20\" fill=\"{}\"/>\
         <g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\" \
         text-anchor=\"middle\"><text x=\"{}\" y=\"14\">{label}</text>\
         <text x=\"{}\" y=\"14\">{}</text></g></svg>",
        badge.colour(),
        left / 2,
        left + right / 2,
        escape(word)
    )
}

/// The Markdown that shows the badge of `branch` of `project`, with `base` the pages' address
/// (empty: a path on this host). A `/` in a branch's name is written `%2F`.
pub fn badge_markdown(base: &str, project: &str, branch: &str) -> String {
    format!(
        "[![build]({base}/badges/{}/{}.svg)]({base}/?repository={})",
        super::encode(project),
        branch.replace('%', "%25").replace('/', "%2F"),
        super::encode(project)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_badge_says_its_word_in_its_colour() {
        for (badge, colour) in [
            (Badge::Passing, "#2da44e"),
            (Badge::Failing, "#cf222e"),
            (Badge::Unknown, "#8c959f"),
        ] {
            let svg = badge_svg(badge);
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
            assert!(svg.contains(&format!("build: {}", badge.word())));
            assert!(svg.contains(colour));
        }
        assert_eq!(
            badge_markdown("https://ci.example.com", "github.com/octo/app", "feature/x"),
            "[![build](https://ci.example.com/badges/github.com/octo/app/feature%2Fx.svg)]\
             (https://ci.example.com/?repository=github.com/octo/app)"
        );
    }
}
