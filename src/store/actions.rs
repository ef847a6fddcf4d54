//! One-tap action links: the key that signs them (one row) and the links used.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

impl Store {
    /// The key that signs the one-tap action links: the stored one, or `fresh`,
    /// stored now when there is none (the first instance to ask decides).
    pub async fn action_key(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO action_key (id, key, created_at) VALUES (1, $1, now())
                     ON CONFLICT (id) DO NOTHING",
                )
                .await?,
                &[&fresh],
            )
            .await?;
            let row = c
                .query_one(
                    &c.prepare_cached("SELECT key FROM action_key WHERE id = 1")
                        .await?,
                    &[],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    /// Use an action link once: `true` the first time its `nonce` is used anywhere.
    /// Used links are forgotten once expired (they are refused as expired then).
    pub async fn use_action(
        &self,
        nonce: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached("DELETE FROM actions_used WHERE expires_at < $1")
                    .await?,
                &[&now],
            )
            .await?;
            Ok(c.query_opt(
                &c.prepare_cached(
                    "INSERT INTO actions_used (nonce, used_at, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (nonce) DO NOTHING RETURNING 1",
                )
                .await?,
                &[&nonce, &now, &expires_at],
            )
            .await?
            .is_some())
        })
        .await
    }

    /// Forget that an action link was used (its action could not be done).
    pub async fn release_action(&self, nonce: &str) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached("DELETE FROM actions_used WHERE nonce = $1")
                    .await?,
                &[&nonce],
            )
            .await?;
            Ok(())
        })
        .await
    }
}
