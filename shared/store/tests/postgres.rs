//! The repositories against a real, migrated Postgres (`WEFT_TEST_DATABASE_URL`; each test on a
//! fresh database): another tenant's ids behave exactly as missing ones, published versions are
//! immutable in the database itself, keyset cursors page without gaps or repeats, and publishes of
//! one workflow are serialised by its row lock.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use store::{NewVersion, Store, StoreError};
use uuid::Uuid;

const OWNER: &str = "acme";
const OTHER: &str = "globex";

async fn store() -> Option<Store> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    Some(store::testing::fresh_store(&admin).await.unwrap().0)
}

fn graph(name: &str) -> Value {
    json!({"format": "weft/v1", "name": name, "nodes": [], "edges": []})
}

async fn create(store: &Store, tenant: &str, name: &str) -> Uuid {
    store.create_workflow(tenant, "u", "editor", name, None, &graph(name)).await.unwrap().id
}

fn version(n: i32) -> NewVersion {
    NewVersion {
        version: n,
        graph: graph("v"),
        asl: json!({"StartAt": "s", "States": {"s": {"Type": "Succeed"}}}),
        workflow_type: "STANDARD".into(),
        content_hash: format!("hash-{n}"),
        state_machine_arn: None,
        state_machine_version_arn: None,
        alias_arn: None,
    }
}

async fn publish(store: &Store, tenant: &str, id: Uuid) -> i32 {
    let mut tx = store.lock_workflow(tenant, id).await.unwrap();
    let n = tx.next_version();
    tx.insert_version("u", "editor", version(n)).await.unwrap();
    tx.commit().await.unwrap();
    n
}

fn not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn another_tenants_ids_behave_as_missing_ones() {
    let Some(store) = store().await else { return };
    let id = create(&store, OWNER, "mine").await;
    publish(&store, OWNER, id).await;
    // The other tenant exists and has rows of its own, so "empty" is not "no tenant".
    let theirs = create(&store, OTHER, "theirs").await;
    let missing = Uuid::new_v4();

    for probe in [id, missing] {
        not_found(store.get_workflow(OTHER, probe).await);
        not_found(store.update_workflow(OTHER, probe, "stolen", None, &graph("stolen")).await);
        not_found(store.lock_workflow(OTHER, probe).await.map(|tx| tx.workflow().id));
        not_found(store.get_version(OTHER, probe, 1).await);
        not_found(store.list_versions(OTHER, probe, None, 10).await.map(|p| p.items.len()));
        not_found(store.delete_workflow(OTHER, probe).await);
    }
    let listed = store.list_workflows(OTHER, None, None, 50).await.unwrap();
    assert_eq!(listed.items.iter().map(|w| w.id).collect::<Vec<_>>(), [theirs]);
    // Nothing changed for the owner.
    let mine = store.get_workflow(OWNER, id).await.unwrap();
    assert_eq!((mine.name.as_str(), mine.graph.clone(), mine.latest_version), ("mine", graph("mine"), Some(1)));
    assert_eq!(store.get_version(OWNER, id, 1).await.unwrap().content_hash, "hash-1");

    // Secrets: same name in two tenants are two secrets; one tenant's never shows in the other.
    store.create_secret(OWNER, "u", "admin", "TOKEN", b"n-a", b"c-a").await.unwrap();
    not_found(store.get_secret(OTHER, "TOKEN").await);
    not_found(store.delete_secret(OTHER, "TOKEN").await);
    assert!(store.list_secrets(OTHER).await.unwrap().is_empty());
    store.create_secret(OTHER, "u", "admin", "TOKEN", b"n-b", b"c-b").await.unwrap();
    assert_eq!(store.get_secret(OWNER, "TOKEN").await.unwrap(), (b"n-a".to_vec(), b"c-a".to_vec()));
    assert_eq!(store.get_secret(OTHER, "TOKEN").await.unwrap(), (b"n-b".to_vec(), b"c-b".to_vec()));
    let taken = store.create_secret(OWNER, "u", "admin", "TOKEN", b"n", b"c").await;
    assert!(matches!(&taken, Err(StoreError::Conflict(m)) if m.contains("TOKEN")), "{taken:?}");

    // API keys: revoking or listing another tenant's key is as for a missing one.
    let key = store.create_api_key(OWNER, "u", "admin", "ci", "editor", "wk_abc", b"hash").await.unwrap();
    not_found(store.revoke_api_key(OTHER, key.id).await);
    assert!(store.list_api_keys(OTHER).await.unwrap().is_empty());
    assert_eq!(store.list_api_keys(OWNER).await.unwrap().iter().map(|k| k.id).collect::<Vec<_>>(), [key.id]);
    // The one cross-tenant lookup: the prefix is how a key's tenant is found.
    assert_eq!(store.find_api_key("wk_abc").await.unwrap().map(|k| k.tenant_id), Some(OWNER.to_owned()));
    let reused = store.create_api_key(OTHER, "u", "admin", "ci", "editor", "wk_abc", b"other").await;
    assert!(matches!(reused, Err(StoreError::Conflict(_))), "{reused:?}");
    store.revoke_api_key(OWNER, key.id).await.unwrap();
    assert!(store.find_api_key("wk_abc").await.unwrap().is_none(), "a revoked key is not found");
    not_found(store.revoke_api_key(OWNER, key.id).await);
}

#[tokio::test]
async fn published_versions_are_immutable_in_the_database() {
    let Some(store) = store().await else { return };
    let id = create(&store, OWNER, "frozen").await;
    publish(&store, OWNER, id).await;
    let pool = store.pool();
    let update = sqlx::query("UPDATE workflow_versions SET content_hash = 'changed'").execute(pool).await;
    store::testing::assert_refused_as_immutable(update, "workflow_versions");
    let delete = sqlx::query("DELETE FROM workflow_versions").execute(pool).await;
    store::testing::assert_refused_as_immutable(delete, "workflow_versions");
    // Neither took effect, and new versions can still be added.
    assert_eq!(store.get_version(OWNER, id, 1).await.unwrap().content_hash, "hash-1");
    assert_eq!(publish(&store, OWNER, id).await, 2);
    // The draft stays editable.
    store.update_workflow(OWNER, id, "thawed", None, &graph("thawed")).await.unwrap();
}

#[tokio::test]
async fn workflow_cursors_page_through_ties_without_gaps_or_repeats() {
    let Some(store) = store().await else { return };
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(create(&store, OWNER, &format!("wf {i}")).await);
    }
    create(&store, OTHER, "wf other").await;
    // Five of them share one creation time: the id breaks the tie.
    sqlx::query("UPDATE workflows SET created_at = '2026-01-01T00:00:00Z' WHERE id = ANY($1)")
        .bind(&ids[1..6])
        .execute(store.pool())
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list_workflows(OWNER, None, cursor.as_deref(), 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|w| (w.created_at, w.id)));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let mut expected = seen.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected, "newest first, then by id");
    let mut found: Vec<Uuid> = seen.iter().map(|(_, id)| *id).collect();
    found.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(found, all, "every workflow once, none of the other tenant's");

    // Another tenant's cursor is only a position: it pages that tenant's own rows.
    let first = store.list_workflows(OWNER, None, None, 1).await.unwrap();
    let from_owner = store.list_workflows(OTHER, None, first.next_cursor.as_deref(), 50).await.unwrap();
    assert!(from_owner.items.iter().all(|w| w.name == "wf other"), "{:?}", from_owner.items);
    for bad in ["", "!!", "bm9wZQ"] {
        let r = store.list_workflows(OWNER, None, Some(bad), 2).await;
        assert!(matches!(r, Err(StoreError::BadCursor)), "{bad}: {r:?}");
    }
    // The limit is clamped to 1..=200, not refused.
    assert_eq!(store.list_workflows(OWNER, None, None, 0).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn name_filters_match_wildcards_literally_and_deleted_workflows_disappear() {
    let Some(store) = store().await else { return };
    let pct = create(&store, OWNER, "100% Real").await;
    let under = create(&store, OWNER, "a_b").await;
    create(&store, OWNER, "100 real").await;
    create(&store, OWNER, "axb").await;
    let names = |page: store::Page<store::WorkflowSummary>| page.items.into_iter().map(|w| w.id).collect::<Vec<_>>();
    assert_eq!(names(store.list_workflows(OWNER, Some("0% r"), None, 50).await.unwrap()), [pct]);
    assert_eq!(names(store.list_workflows(OWNER, Some("A_B"), None, 50).await.unwrap()), [under]);
    assert!(names(store.list_workflows(OWNER, Some("\\"), None, 50).await.unwrap()).is_empty());

    publish(&store, OWNER, pct).await;
    store.delete_workflow(OWNER, pct).await.unwrap();
    not_found(store.get_workflow(OWNER, pct).await);
    not_found(store.get_version(OWNER, pct, 1).await);
    not_found(store.delete_workflow(OWNER, pct).await);
    assert!(names(store.list_workflows(OWNER, Some("100%"), None, 50).await.unwrap()).is_empty());
}

#[tokio::test]
async fn version_cursors_count_down_and_reject_garbage() {
    let Some(store) = store().await else { return };
    let id = create(&store, OWNER, "versions").await;
    for _ in 0..5 {
        publish(&store, OWNER, id).await;
    }
    let first = store.list_versions(OWNER, id, None, 2).await.unwrap();
    assert_eq!(first.items.iter().map(|v| v.version).collect::<Vec<_>>(), [5, 4]);
    let second = store.list_versions(OWNER, id, first.next_cursor.as_deref(), 2).await.unwrap();
    assert_eq!(second.items.iter().map(|v| v.version).collect::<Vec<_>>(), [3, 2]);
    let last = store.list_versions(OWNER, id, second.next_cursor.as_deref(), 2).await.unwrap();
    assert_eq!((last.items.iter().map(|v| v.version).collect::<Vec<_>>(), last.next_cursor), (vec![1], None));
    let bad = store.list_versions(OWNER, id, Some("three"), 2).await;
    assert!(matches!(bad, Err(StoreError::BadCursor)), "{bad:?}");
    // A workflow without versions answers an empty page, not "no such workflow".
    let fresh = create(&store, OWNER, "fresh").await;
    let empty = store.list_versions(OWNER, fresh, None, 2).await.unwrap();
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

#[tokio::test]
async fn publishes_of_one_workflow_wait_for_each_other() {
    let Some(store) = store().await else { return };
    let id = create(&store, OWNER, "busy").await;
    let mut first = store.lock_workflow(OWNER, id).await.unwrap();
    assert_eq!(first.next_version(), 1);
    let second = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.lock_workflow(OWNER, id).await.unwrap();
            let n = tx.next_version();
            tx.insert_version("u", "editor", version(n)).await.unwrap();
            tx.commit().await.unwrap();
            n
        }
    });
    // While the first holds the row, the second cannot read it (this cannot fail by slowness).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second publish did not wait for the row lock");
    first.insert_version("u", "editor", version(1)).await.unwrap();
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), 2, "the second publish saw the first one's version");
    let w = store.get_workflow(OWNER, id).await.unwrap();
    assert_eq!((w.latest_version, w.live_version), (Some(2), Some(2)));

    // Rolling the alias back inside the lock; a version number that exists already conflicts.
    let mut tx = store.lock_workflow(OWNER, id).await.unwrap();
    assert_eq!(tx.version(1).await.unwrap().content_hash, "hash-1");
    not_found(tx.version(9).await);
    tx.set_live_version(1, Some("arn:alias")).await.unwrap();
    let dup = tx.insert_version("u", "editor", version(2)).await;
    assert!(matches!(&dup, Err(StoreError::Conflict(m)) if m.contains("concurrently")), "{dup:?}");
    drop(tx);
    let w = store.get_workflow(OWNER, id).await.unwrap();
    assert_eq!((w.live_version, w.alias_arn), (Some(2), None), "a dropped transaction changes nothing");
}

#[tokio::test]
async fn api_key_use_is_written_at_most_once_a_minute() {
    let Some(store) = store().await else { return };
    let key = store.create_api_key(OWNER, "u", "admin", "ci", "viewer", "wk_touch", b"h").await.unwrap();
    assert_eq!(key.last_used_at, None);
    store.touch_api_key(key.id).await.unwrap();
    let first = store.find_api_key("wk_touch").await.unwrap().unwrap().last_used_at.unwrap();
    store.touch_api_key(key.id).await.unwrap();
    let second = store.find_api_key("wk_touch").await.unwrap().unwrap().last_used_at.unwrap();
    assert_eq!(first, second, "a second use within the minute is not written");
    sqlx::query("UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE id = $1")
        .bind(key.id)
        .execute(store.pool())
        .await
        .unwrap();
    store.touch_api_key(key.id).await.unwrap();
    let third = store.find_api_key("wk_touch").await.unwrap().unwrap().last_used_at.unwrap();
    assert!(third >= first, "a use a minute later is written: {third} vs {first}");
}
