//! Reading Redis stream replies: `XREADGROUP`, `XRANGE` and `XAUTOCLAIM` answers as
//! `(id, fields)` pairs, and queuing an `XADD` of one item on a pipeline.

use redis::Value;

/// Entries of an XREADGROUP reply: `[[stream, [[id, [field, value, ...]], ...]]]`.
pub fn read_reply_entries(v: &Value) -> Vec<(String, Option<String>)> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) => kv.get(1).map(entries),
                _ => None,
            })
            .flatten()
            .collect(),
        Value::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// `[[id, [field, value, ...]], ...]` → `(id, value of field "p")`; a deleted entry has
/// no fields.
pub fn entries(v: &Value) -> Vec<(String, Option<String>)> {
    fields_of(v)
        .into_iter()
        .map(|(id, fields)| {
            let payload = fields.into_iter().find(|(k, _)| k == "p").map(|(_, p)| p);
            (id, payload)
        })
        .collect()
}

/// Every entry of an `XRANGE` reply with all its fields (unreadable ones left out).
pub fn fields_of(v: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = text(parts.first()?)?;
            let fields = match parts.get(1) {
                Some(Value::Array(kvs)) => kvs
                    .chunks(2)
                    .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?)))
                    .collect(),
                _ => Vec::new(),
            };
            Some((id, fields))
        })
        .collect()
}

pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Queue an `XADD <stream> * p <payload>` (its answer ignored) on a pipeline.
pub fn push_entry(pipe: &mut redis::Pipeline, stream: &str, payload: &str) {
    pipe.cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("p")
        .arg(payload)
        .ignore();
}
