//! The registry of notifier kinds: one line per kind, each kind one file here (see
//! `../kind.rs` for what a kind is). The `format` of a `[[notify.webhooks]]` entry
//! picks its kind by name.

macro_rules! registry {
    ($($kind:ident,)*) => {
        $(mod $kind;)*
        /// Every kind, by the `format` that names it.
        pub static KINDS: &[&super::kind::NotifierKind] = &[$(&$kind::KIND),*];
    };
}

registry! {
    ntfy,
    alertmanager,
    json,
    telegram,
    email,
}
