//! Test support (feature `test-util`): a fresh, migrated [`Store`] per test, so tests run in
//! parallel safely. The database helpers themselves are the `migrations` crate's.
//!
//! Tests read `WEFT_TEST_DATABASE_URL` (an admin URL, e.g. from `scripts/dev-services`). When it
//! is unset they skip with a note, unless `WEFT_TEST_STRICT=1`, when they fail.

pub use migrations::testing::{create_database, service_url};

use crate::{Store, StoreError};

/// A migrated [`Store`] on a fresh database, and the database's URL.
pub async fn fresh_store(admin_url: &str) -> Result<(Store, String), StoreError> {
    let url = create_database(admin_url).await?;
    let store = Store::connect(&url, 5).await?;
    store.migrate().await?;
    Ok((store, url))
}
