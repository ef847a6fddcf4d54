//! A headless Chromium driven over W3C WebDriver (Debian's `chromium` and
//! `chromium-driver`), through a few calls over reqwest: no WebDriver crate needed.
//! Each `Browser` starts its own chromedriver on a free loopback port and its own
//! Chromium profile in a temp dir; both go away on drop.

use super::{eventually, eventually_blocking, free_port, http_blocking, http_get_ok, require};
use base64::Engine;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};

/// The key of an element reference in W3C WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver and a headless Chromium with a `width`×`height` window.
    pub async fn start(width: u32, height: u32) -> Self {
        let chromium = require("chromium", "chromium");
        let driver_bin = require("chromedriver", "chromium-driver");
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let status = format!("{base}/status");
        eventually_blocking("chromedriver /status", || http_get_ok(&status));
        let profile = tempfile::tempdir().expect("profile dir");
        // No background networking: this machine's network is closed, and Chromium
        // would otherwise keep trying (and log) connections to Google's services.
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Self {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let answer: Value = req
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("webdriver json");
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        let v = self.post("/url", json!({ "url": url })).await;
        assert!(v.is_null(), "navigation failed: {v}");
    }

    /// Run `script` (a function body; `arguments` holds `args`) and return its value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        let v = self
            .post("/execute/sync", json!({ "script": script, "args": args }))
            .await;
        assert!(v.get("error").is_none(), "script failed: {v}");
        v
    }

    /// The element matching a CSS selector, if there is one now.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Wait for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> String {
        eventually(
            &format!("element {css}"),
            || async move { self.find(css).await },
        )
        .await
    }

    pub async fn click(&self, element: &str) {
        let v = self
            .post(&format!("/element/{element}/click"), json!({}))
            .await;
        assert!(v.is_null(), "click failed: {v}");
    }

    pub async fn type_text(&self, element: &str, text: &str) {
        let v = self
            .post(
                &format!("/element/{element}/value"),
                json!({ "text": text }),
            )
            .await;
        assert!(v.is_null(), "typing failed: {v}");
    }

    /// The visible text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        self.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// Browser console entries since the last call (level and message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.post("/se/log", json!({"type": "browser"})).await;
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or("").to_string(),
                            e["message"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The text of an open alert, confirm or prompt, if any.
    pub async fn alert_text(&self) -> Option<String> {
        let v = self.call(reqwest::Method::GET, "/alert/text", None).await;
        v.as_str().map(str::to_string)
    }

    /// Press Tab once, as a keyboard user would.
    pub async fn press_tab(&self) {
        let tab = "\u{E004}";
        let v = self
            .post(
                "/actions",
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}
                ]}]}),
            )
            .await;
        assert!(v.is_null(), "key press failed: {v}");
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("valid base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium (killing the driver alone would orphan it).
        http_blocking("DELETE", &format!("{}/session/{}", self.base, self.session));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
