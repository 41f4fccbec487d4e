//! A contract's generated documentation (Markdown, baked into its manifest by
//! `contractc build`) rendered as HTML for the console.

use pulldown_cmark::{Event, Options, Parser, html};

/// The page as HTML. Raw HTML in the Markdown (the generated-file comment, or markup in a
/// contract's description) is dropped: the console shows the contract, it does not run it.
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES)
        .filter(|event| !matches!(event, Event::Html(_) | Event::InlineHtml(_)));
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_and_raw_html_is_dropped() {
        let out = render("<!-- x --><script>alert(1)</script>\n\n| a |\n|---|\n| `b` |\n");
        assert!(
            out.contains("<table>") && out.contains("<code>b</code>"),
            "{out}"
        );
        assert!(!out.contains("<script>"), "{out}");
    }
}
