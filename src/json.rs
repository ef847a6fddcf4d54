//! Small serialisation helpers shared by the API shapes, and by the append-only JSON
//! lines files (the queue's spool, the notifiers' outboxes).

use serde::Serialize;

/// A JSON object whose keys keep the order they were given in (registry order, say),
/// where a map type would sort them.
#[derive(Debug, Clone)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Fold `value` into a version stamp (FNV-1a style): equal inputs give equal stamps,
/// and any change gives, in practice, a different one.
pub fn mix(stamp: u64, value: u64) -> u64 {
    (stamp ^ value).wrapping_mul(0x0000_0100_0000_01b3)
}

/// The starting stamp.
pub const STAMP_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// The page part of every paginated answer (the restart history, the alert history):
/// `has_more` is `offset + items_count < total`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub items_count: usize,
    pub has_more: bool,
}

impl Pagination {
    pub fn new(total: usize, limit: usize, offset: usize, items_count: usize) -> Self {
        Self {
            total,
            limit,
            offset,
            items_count,
            has_more: offset + items_count < total,
        }
    }
}

/// Read an append-only JSON lines file whole, cutting a torn last line (a crash in
/// the middle of an append) off the file itself, so the next append starts on a line
/// of its own instead of being glued to the torn bytes and lost with them. Returns
/// the complete lines' bytes (ending with `\n`, or empty) and how many torn bytes
/// were cut.
pub fn read_lines_cutting_torn(path: &std::path::Path) -> std::io::Result<(Vec<u8>, usize)> {
    let mut data = std::fs::read(path)?;
    let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let torn = data.len() - keep;
    if torn > 0 {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
        data.truncate(keep);
    }
    Ok((data, torn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_order() {
        let m = OrderedMap(vec![("b".to_string(), 1), ("a".to_string(), 2)]);
        assert_eq!(serde_json::to_string(&m).expect("json"), r#"{"b":1,"a":2}"#);
    }
}
