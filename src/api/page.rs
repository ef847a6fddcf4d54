//! `GET /`: the status page, and the three files it loads. All of it is compiled
//! into the binary (no CDN, no build step); the page reads the JSON API and `/ws`
//! like any other client (`page/app.js`).
//!
//! Every answer here carries a strict Content-Security-Policy (only this origin's
//! files; no inline script or style, no frames, no plugins), `nosniff`, `DENY`
//! framing and no referrer.

use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");
const ICON: &str = include_str!("page/icon.svg");
const RUNBOOK: &str = include_str!("../../docs/runbook.md");

/// The policy of the page and its files.
pub const CSP: &str = "default-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

fn asset(
    content_type: &'static str,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // Small files: revalidate so an upgraded binary's page is used at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// The status page.
#[utoipa::path(get, path = "/", tag = "status page",
    responses((status = 200, description = "The status page (HTML)", content_type = "text/html")))]
pub async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// The status page's script.
#[utoipa::path(get, path = "/static/app.js", tag = "status page",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The status page's style sheet.
#[utoipa::path(get, path = "/static/style.css", tag = "status page",
    responses((status = 200, description = "CSS", content_type = "text/css")))]
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// The status page's icon.
#[utoipa::path(get, path = "/static/icon.svg", tag = "status page",
    responses((status = 200, description = "SVG icon", content_type = "image/svg+xml")))]
pub async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON)
}

/// The shipped runbook (`docs/runbook.md`), so an alert's runbook links work with
/// nothing else configured: every heading is a section with an anchor
/// (`#watchpostcameraoffline`), everything else its text as written.
#[utoipa::path(get, path = "/docs/runbook", tag = "status page",
    responses((status = 200, description = "The runbook (HTML)", content_type = "text/html")))]
pub async fn runbook() -> HttpResponse {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    asset(
        "text/html; charset=utf-8",
        PAGE.get_or_init(|| runbook_html(RUNBOOK)).clone(),
    )
}

/// Markdown as a plain page: headings with GitHub-style anchors, the rest as
/// preformatted text, every character escaped.
fn runbook_html(markdown: &str) -> String {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>watchpost runbook</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body class=\"doc\"><main>",
    );
    let mut text = String::new();
    let flush = |out: &mut String, text: &mut String| {
        if !text.trim().is_empty() {
            out.push_str(&format!(
                "<pre class=\"doc\">{}</pre>",
                escape(text.trim_matches('\n'))
            ));
        }
        text.clear();
    };
    for line in markdown.lines() {
        let level = line.chars().take_while(|c| *c == '#').count();
        if (1..=4).contains(&level) && line[level..].starts_with(' ') {
            flush(&mut out, &mut text);
            let title = line[level..].trim();
            let anchor: String = title
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            out.push_str(&format!(
                "<h{level} id=\"{}\">{}</h{level}>",
                escape(&anchor),
                escape(title)
            ));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(&mut out, &mut text);
    out.push_str("</main></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbook_is_served_with_an_anchor_per_alert_and_nothing_unescaped() {
        let html = runbook_html(RUNBOOK);
        assert!(html.contains("<h2 id=\"watchpostcameraoffline\">WatchpostCameraOffline</h2>"));
        let page = runbook_html("## A <b>\n<script>x</script> & \"q\"\n");
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
    }

    #[test]
    fn the_page_loads_only_its_own_files_and_never_inserts_html() {
        // No inline script or style for the CSP to allow, nothing from elsewhere.
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"));
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "localStorage",
        ] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
    }
}
