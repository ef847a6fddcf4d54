//! HTTP helpers every test file shares: GET and POST answering (status, JSON body),
//! text bodies, the error contract's `detail`, and reading one series from `/metrics`.

use crate::support::{client, Watchpost};
use reqwest::IntoUrl;
use serde_json::Value;

/// GET `url`: the status and the JSON body (`Null` when the body is not JSON).
pub async fn get<U: IntoUrl>(url: U) -> (u16, Value) {
    let r = client().get(url).send().await.expect("GET");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// POST `url` with no body, with `X-API-Key` when a key is given.
pub async fn post<U: IntoUrl>(url: U, key: Option<&str>) -> (u16, Value) {
    let mut req = client().post(url);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    let r = req.send().await.expect("POST");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// GET `url` and return the body as text (panics on a transport error).
pub async fn get_text<U: IntoUrl>(url: U) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text body")
}

pub fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

pub async fn json(url: String) -> Value {
    client()
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}

pub async fn metrics(wp: &Watchpost) -> String {
    get_text(format!("{}/metrics", wp.url())).await
}

pub fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

pub async fn alerts(wp: &Watchpost, query: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}/api/system/alerts{query}", wp.url()))
        .send()
        .await
        .expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

pub fn of<'a>(page: &'a Value, source: &str) -> Option<&'a Value> {
    page["items"]
        .as_array()?
        .iter()
        .find(|a| a["source"] == source)
}

/// One notifier of `GET /api/system/notifiers`, by name.
pub fn notifier<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["notifiers"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("notifier {name} in {list}"))
}
