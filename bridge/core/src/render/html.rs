//! The few HTML pieces Matrix clients render (`org.matrix.custom.html`):
//! escaping, the TLP badge and safe links.

use varde_schemas::Tlp;

/// Escapes text for HTML element content and double-quoted attributes.
/// Every value from a message passes through here: payloads are data from
/// other organisations, never markup.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The label in FIRST's colour on black, as the first thing of every post.
/// `data-mx-color` is the Matrix spec's attribute; `color` is for clients
/// that only know `<font>`.
pub fn badge(label: Tlp) -> String {
    let c = label.colour_hex();
    format!(
        "<font color=\"{c}\" data-mx-color=\"{c}\" data-mx-bg-color=\"#000000\"><b>{}</b></font>",
        escape(label.as_str())
    )
}

/// A reference as a link when it is an http(s) URL, else as text.
pub fn link(s: &str) -> String {
    let t = s.trim();
    let is_web = url::Url::parse(t).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if is_web {
        format!("<a href=\"{}\">{}</a>", escape(t), escape(t))
    } else {
        escape(t)
    }
}

/// Tags a member's formatted message may keep when another bridge shows it:
/// plain formatting without attributes, so nothing from another
/// organisation can carry links, images or styles into a room.
const KEPT_TAGS: [&str; 12] = [
    "b",
    "i",
    "strong",
    "em",
    "code",
    "pre",
    "p",
    "ul",
    "ol",
    "li",
    "blockquote",
    "del",
];

/// A member's `formatted_body` reduced to [`KEPT_TAGS`]: everything is
/// escaped, then exactly those tags (without attributes) and `<br>` are
/// let through again.
pub fn safe_subset(html: &str) -> String {
    let mut out = escape(html);
    for t in KEPT_TAGS {
        for form in [format!("<{t}>"), format!("</{t}>")] {
            out = out.replace(&escape(&form), &form);
        }
    }
    for br in ["<br>", "<br/>", "<br />"] {
        out = out.replace(&escape(br), "<br/>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_links() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert!(badge(Tlp::Amber).contains("#FFC000") && badge(Tlp::Amber).contains("TLP:AMBER"));
        assert_eq!(
            link("https://a.example/?q=<x>"),
            "<a href=\"https://a.example/?q=&lt;x&gt;\">https://a.example/?q=&lt;x&gt;</a>"
        );
        assert_eq!(link("javascript:alert(1)"), "javascript:alert(1)");
    }

    #[test]
    fn safe_subset_keeps_plain_formatting_only() {
        assert_eq!(
            safe_subset("<b>x</b><br><a href=\"https://e.example\">l</a><b onclick=\"f()\">y</b>"),
            "<b>x</b><br/>&lt;a href=&quot;https://e.example&quot;&gt;l&lt;/a&gt;&lt;b onclick=&quot;f()&quot;&gt;y</b>"
        );
    }
}
