//! Turning the LLM's free text into a risk assessment: strip `<think>…</think>`, find
//! the first balanced JSON object, read `risk_score` (0–100), `summary`, `reasoning`.
//! The level is always derived from the score (low 0–29, medium 30–59, high 60–84,
//! critical 85–100) so the two can never disagree.

use serde::Serialize;

pub const FALLBACK_SUMMARY: &str = "Analysis unavailable - LLM service error";
pub const FALLBACK_SCORE: u8 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    pub fn from_score(score: u8) -> Self {
        match score {
            0..=29 => Self::Low,
            30..=59 => Self::Medium,
            60..=84 => Self::High,
            _ => Self::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskAssessment {
    pub risk_score: u8,
    pub risk_level: RiskLevel,
    pub summary: String,
    pub reasoning: String,
    /// True when these are the fallback values (the LLM failed).
    pub fallback: bool,
}

impl RiskAssessment {
    /// The values of docs/behaviour.md §3 used when every attempt failed.
    pub fn fallback(why: &str) -> Self {
        Self {
            risk_score: FALLBACK_SCORE,
            risk_level: RiskLevel::from_score(FALLBACK_SCORE),
            summary: FALLBACK_SUMMARY.to_string(),
            reasoning: format!("LLM analysis failed: {why}"),
            fallback: true,
        }
    }
}

/// Remove `<think>…</think>` blocks (and an unterminated leading one).
fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        match rest.find("<think>") {
            Some(start) => {
                out.push_str(&rest[..start]);
                match rest[start..].find("</think>") {
                    Some(end) => rest = &rest[start + end + "</think>".len()..],
                    None => return out,
                }
            }
            None => {
                // A closing tag without an opening one: drop everything before it.
                if let Some(end) = rest.find("</think>") {
                    out.clear();
                    rest = &rest[end + "</think>".len()..];
                    continue;
                }
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// The first balanced `{…}` in `text` that parses as a JSON object.
fn first_json_object(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(off) = text[start..].find('{') {
        let open = start + off;
        let (mut depth, mut in_str, mut escaped) = (0i32, false, false);
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            if in_str {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        if let Ok(serde_json::Value::Object(m)) =
                            serde_json::from_str(&text[open..=i])
                        {
                            return Some(m);
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
        start = open + 1;
    }
    None
}

/// Parse the LLM's `content` into a risk assessment, or say why it is unusable.
pub fn parse_llm_content(content: &str) -> Result<RiskAssessment, String> {
    let text = strip_think(content);
    let obj = first_json_object(&text).ok_or("no JSON object in the LLM answer")?;
    let score = obj
        .get("risk_score")
        .and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
        .ok_or("the JSON has no numeric risk_score")?;
    if !score.is_finite() {
        return Err("risk_score is not a finite number".into());
    }
    let score = score.round().clamp(0.0, 100.0) as u8;
    let text_of = |key: &str| {
        obj.get(key)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let summary = text_of("summary");
    if summary.is_empty() {
        return Err("the JSON has no summary".into());
    }
    Ok(RiskAssessment {
        risk_score: score,
        risk_level: RiskLevel::from_score(score),
        summary,
        reasoning: text_of("reasoning"),
        fallback: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_think_and_reads_the_json() {
        let r = parse_llm_content(
            "<think>hmm {\"risk_score\": 1}</think>Here: {\"risk_score\": 72, \"risk_level\": \"low\", \"summary\": \" Person at door \", \"reasoning\": \"night\"} done",
        )
        .expect("parsed");
        assert_eq!(r.risk_score, 72);
        assert_eq!(r.risk_level, RiskLevel::High, "level follows the score");
        assert_eq!(r.summary, "Person at door");
        assert!(!r.fallback);
    }

    #[test]
    fn handles_braces_in_strings_and_unterminated_think() {
        let r = parse_llm_content("{\"risk_score\": \"90\", \"summary\": \"a {weird} one\"}")
            .expect("parsed");
        assert_eq!((r.risk_score, r.risk_level), (90, RiskLevel::Critical));
        assert!(
            parse_llm_content("<think>never ends {\"risk_score\": 5, \"summary\": \"x\"}").is_err()
        );
        let r = parse_llm_content("reasoning...</think>{\"risk_score\": 10, \"summary\": \"ok\"}")
            .expect("parsed");
        assert_eq!(r.risk_level, RiskLevel::Low);
    }

    #[test]
    fn rejects_answers_without_usable_json_and_clamps_scores() {
        assert!(parse_llm_content("no json here").is_err());
        assert!(parse_llm_content("{\"summary\": \"x\"}").is_err());
        assert!(parse_llm_content("{\"risk_score\": 5}").is_err());
        let r = parse_llm_content("{\"risk_score\": 250, \"summary\": \"x\"}").expect("parsed");
        assert_eq!(r.risk_score, 100);
    }

    #[test]
    fn level_boundaries() {
        let levels: Vec<_> = [0, 29, 30, 59, 60, 84, 85, 100]
            .iter()
            .map(|s| RiskLevel::from_score(*s))
            .collect();
        use RiskLevel::*;
        assert_eq!(
            levels,
            [Low, Low, Medium, Medium, High, High, Critical, Critical]
        );
        let f = RiskAssessment::fallback("x");
        assert_eq!(
            (f.risk_score, f.risk_level, f.summary.as_str()),
            (50, Medium, FALLBACK_SUMMARY)
        );
    }
}
