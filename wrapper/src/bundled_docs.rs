//! The documentation `--enable-docs` serves at `/__wsgi__/docs`: rwsgi's
//! README and `docs/*.md`, compiled into rwsgi-express so that an installed
//! binary serves the documentation of its own version. mod_wsgi-express
//! serves the HTML documentation bundled with its package there; these are
//! the Markdown sources, served as UTF-8 text, with an HTML index.

/// The files, as (file name, text).
pub const FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../README.md")),
    ("express.md", include_str!("../../docs/express.md")),
    ("errors.md", include_str!("../../docs/errors.md")),
    ("python-api.md", include_str!("../../docs/python-api.md")),
    ("telemetry.md", include_str!("../../docs/telemetry.md")),
    (
        "daemon-protocol.md",
        include_str!("../../docs/daemon-protocol.md"),
    ),
    ("performance.md", include_str!("../../docs/performance.md")),
];

/// The first `# ` heading of a Markdown text, or `None`.
fn title(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(str::trim)
}

/// `index.html`: a list of links to [`FILES`], each with its title.
pub fn index_html(version: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <title>rwsgi {version} documentation</title></head>\n<body>\n\
         <h1>rwsgi {version} documentation</h1>\n<ul>\n"
    );
    for (name, text) in FILES {
        let t = title(text).unwrap_or(name);
        let t = t
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        out.push_str(&format!("<li><a href=\"{name}\">{t}</a> ({name})</li>\n"));
    }
    out.push_str("</ul>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_links_every_file() {
        let html = index_html("1.2.3");
        for (name, _) in FILES {
            assert!(html.contains(&format!("href=\"{name}\"")), "{name}");
        }
        assert!(html.contains("<title>rwsgi 1.2.3 documentation</title>"));
        assert_eq!(title("intro\n# rwsgi\n"), Some("rwsgi"));
    }
}
