//! Creating the configured database when it does not exist yet (a fresh PostgreSQL has
//! only `postgres`): connect to the server's maintenance database with the same role,
//! and `CREATE DATABASE` when the role may (`CREATEDB` or superuser). When it may not,
//! the error says so, with the `createdb` command that fixes it, instead of
//! "unreachable".

use std::time::Duration;
use tokio_postgres::NoTls;

use super::error::StoreError;

/// Bound on the whole attempt (connect, check, create).
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Is this connection error PostgreSQL's "database … does not exist" (3D000)?
pub fn is_missing_database(e: &deadpool_postgres::PoolError) -> bool {
    matches!(e, deadpool_postgres::PoolError::Backend(pg)
        if pg.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME))
}

/// What to tell a person when the database is missing and watchpost may not create it.
fn createdb_hint(cfg: &tokio_postgres::Config, db: &str, why: &str) -> String {
    let mut cmd = String::from("createdb");
    if let Some(tokio_postgres::config::Host::Tcp(h)) = cfg.get_hosts().first() {
        cmd.push_str(&format!(" -h {h}"));
    }
    if let Some(p) = cfg.get_ports().first() {
        cmd.push_str(&format!(" -p {p}"));
    }
    // Run as a superuser (the role itself may not create databases), owned by the role.
    cmd.push_str(" -U postgres");
    if let Some(u) = cfg.get_user() {
        cmd.push_str(&format!(" -O {u}"));
    }
    cmd.push_str(&format!(" {db}"));
    format!("database \"{db}\" does not exist and {why}: as a superuser, create it owned by the role with `{cmd}` (or give the role CREATEDB)")
}

/// `"name"`, with embedded quotes doubled (an SQL identifier).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Create the database `url` names, connecting to `postgres` (or `template1`) as the
/// same role. `Ok(true)` when created (or created meanwhile by another instance),
/// `Err` with the reason and the command otherwise.
pub async fn create_database(url: &str) -> Result<bool, StoreError> {
    let cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Query(format!("invalid postgres URL: {e}")))?;
    let Some(db) = cfg.get_dbname().map(str::to_string) else {
        return Ok(false);
    };
    let attempt = async {
        let mut last = String::new();
        for maintenance in ["postgres", "template1"] {
            if maintenance == db {
                continue;
            }
            let mut admin = cfg.clone();
            admin.dbname(maintenance);
            let (client, connection) = match admin.connect(NoTls).await {
                Ok(c) => c,
                Err(e) => {
                    last = crate::redact::error(&e);
                    continue;
                }
            };
            let conn = tokio::spawn(connection);
            let result = create_with(&client, &cfg, &db).await;
            drop(client);
            conn.abort();
            return result;
        }
        Err(StoreError::Unavailable(createdb_hint(
            &cfg,
            &db,
            &format!("the server's maintenance database cannot be reached ({last})"),
        )))
    };
    tokio::time::timeout(CREATE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "database \"{db}\" does not exist, and creating it got no answer within {} s",
                CREATE_TIMEOUT.as_secs()
            )))
        })
}

async fn create_with(
    client: &tokio_postgres::Client,
    cfg: &tokio_postgres::Config,
    db: &str,
) -> Result<bool, StoreError> {
    let may: bool = client
        .query_one(
            "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(false);
    if !may {
        let role = cfg.get_user().unwrap_or("this role");
        return Err(StoreError::Unavailable(createdb_hint(
            cfg,
            db,
            &format!("role \"{role}\" may not create it"),
        )));
    }
    match client
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(db)))
        .await
    {
        Ok(()) => {
            tracing::info!(database = db, "created the database (it did not exist)");
            Ok(true)
        }
        // Created meanwhile by another instance: PostgreSQL says so as 42P04, or, when
        // the two commands race inside the catalog, as a unique violation (23505).
        Err(e)
            if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(true)
        }
        Err(e) => Err(StoreError::Unavailable(createdb_hint(
            cfg,
            db,
            &format!("creating it failed ({})", crate::redact::error(&e)),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_database_and_the_command_without_the_password() {
        let cfg: tokio_postgres::Config = "postgres://app:pw@db.lan:5433/watchpost"
            .parse()
            .expect("url");
        let hint = createdb_hint(&cfg, "watchpost", "role \"app\" may not create it");
        assert_eq!(
            hint,
            "database \"watchpost\" does not exist and role \"app\" may not create it: as a superuser, create it owned by the role with `createdb -h db.lan -p 5433 -U postgres -O app watchpost` (or give the role CREATEDB)"
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("watch\"post"), "\"watch\"\"post\"");
    }
}
