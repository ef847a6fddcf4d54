//! The LLM server's slots, as llama.cpp's `GET /slots` lists them: what the performance
//! view shows of Nemotron (slots busy and in all, context size).

use serde_json::Value;

/// Largest `/slots` answer read (each slot is a few KiB with its sampling settings).
pub(super) const MAX_SLOTS_BODY: u64 = 256 * 1024;

/// What the LLM server says of its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlmSlots {
    pub total: i64,
    pub active: i64,
    /// The context size of a slot (`n_ctx`), 0 when not given.
    pub context_size: i64,
}

impl LlmSlots {
    /// From llama.cpp's `/slots` list: a slot is busy when `is_processing` is true
    /// (newer servers) or its `state` is not 0 (older ones).
    pub fn parse(answer: &Value) -> Option<Self> {
        let slots = answer.as_array()?;
        let busy = |s: &Value| {
            s["is_processing"]
                .as_bool()
                .unwrap_or_else(|| s["state"].as_i64().is_some_and(|st| st != 0))
        };
        Some(Self {
            total: slots.len() as i64,
            active: slots.iter().filter(|s| busy(s)).count() as i64,
            context_size: slots.first().and_then(|s| s["n_ctx"].as_i64()).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slots_are_counted_from_either_generation_of_the_answer() {
        let newer = json!([
            {"id": 0, "n_ctx": 8192, "is_processing": true},
            {"id": 1, "n_ctx": 8192, "is_processing": false},
        ]);
        assert_eq!(
            LlmSlots::parse(&newer),
            Some(LlmSlots {
                total: 2,
                active: 1,
                context_size: 8192
            })
        );
        let older = json!([{"id": 0, "n_ctx": 4096, "state": 0}, {"id": 1, "state": 1}]);
        assert_eq!(
            LlmSlots::parse(&older),
            Some(LlmSlots {
                total: 2,
                active: 1,
                context_size: 4096
            })
        );
        assert_eq!(LlmSlots::parse(&json!({"error": "disabled"})), None);
    }
}
