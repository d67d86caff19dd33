//! The trigger registry and approvals against a real, migrated Postgres (`WEFT_TEST_DATABASE_URL`;
//! each test on a fresh database): tenant scoping (another tenant's ids behave as missing ones),
//! the documented cross-tenant lookups, registration that keeps a trigger's identity, fire
//! claims by compare-and-set, and decisions that are made once.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use serde_json::json;
use store::Store;
use triggers::approvals::NewApproval;
use triggers::{Approvals, Claim, DecideError, Decision, GraphTrigger, Registry};
use uuid::Uuid;

const OWNER: &str = "acme";
const OTHER: &str = "globex";
const KEY: [u8; 32] = [7u8; 32];

async fn store() -> Option<Store> {
    let admin = store::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    Some(store::testing::fresh_store(&admin).await.unwrap().0)
}

fn registry(store: &Store) -> Registry {
    Registry::new(store.pool().clone(), secrets::SecretsKey::new(&KEY))
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, minute, 0).unwrap()
}

fn trigger(kind: &str, key: &str) -> GraphTrigger {
    GraphTrigger { kind: kind.into(), key: key.into() }
}

async fn workflow(store: &Store, tenant: &str) -> Uuid {
    store::testing::published_workflow(store, tenant).await.unwrap().id
}

#[tokio::test]
async fn registration_keeps_identity_secrets_and_arming_across_publishes() {
    let Some(store) = store().await else { return };
    let reg = registry(&store);
    let wf = workflow(&store, OWNER).await;
    let all = [trigger("webhook", ""), trigger("schedule", "*/5 * * * *"), trigger("queue", "order.created")];
    let first = reg.sync(OWNER, wf, 1, &all, at(0)).await.unwrap();
    assert_eq!(
        first.iter().map(|t| (t.kind.as_str(), t.key.as_str(), t.enabled, t.version)).collect::<Vec<_>>(),
        [
            ("queue", "order.created", true, Some(1)),
            ("schedule", "*/5 * * * *", true, Some(1)),
            ("webhook", "", true, Some(1))
        ]
    );
    assert!(first.iter().all(|t| t.armed_at == at(0) && t.last_fired_at.is_none()));
    let hook = first.iter().find(|t| t.kind == "webhook").unwrap().clone();
    let secret = reg.webhook_secret(OWNER, hook.id).await.unwrap().unwrap();
    assert!(secret.len() >= 32, "{secret}");

    // Publishing again without the queue trigger: same rows (ids, secret, arming), the queue one disabled.
    let second = reg.sync(OWNER, wf, 2, &all[..2], at(10)).await.unwrap();
    let by_kind = |rows: &[triggers::TriggerRow], kind: &str| rows.iter().find(|t| t.kind == kind).unwrap().clone();
    assert_eq!(by_kind(&second, "webhook").id, hook.id);
    assert_eq!(reg.webhook_secret(OWNER, hook.id).await.unwrap().unwrap(), secret);
    assert_eq!((by_kind(&second, "schedule").armed_at, by_kind(&second, "schedule").version), (at(0), Some(2)));
    let queue = by_kind(&second, "queue");
    assert_eq!((queue.id, queue.enabled, queue.version), (by_kind(&first, "queue").id, false, Some(1)));
    assert!(reg.queue_targets("order.created", None).await.unwrap().is_empty());

    // It comes back: re-enabled, armed again from that publish.
    let third = reg.sync(OWNER, wf, 3, &all, at(20)).await.unwrap();
    let queue = by_kind(&third, "queue");
    assert_eq!((queue.enabled, queue.armed_at, queue.version), (true, at(20), Some(3)));
    assert_eq!(
        reg.queue_targets("order.created", None).await.unwrap().iter().map(|t| t.id).collect::<Vec<_>>(),
        [queue.id]
    );

    // A publish with no triggers disables them all; nothing fires for the workflow then.
    reg.sync(OWNER, wf, 4, &[], at(30)).await.unwrap();
    assert!(reg.list(OWNER, wf).await.unwrap().iter().all(|t| !t.enabled));
    assert!(reg.webhook(wf).await.unwrap().is_none());
    assert!(reg.schedules().await.unwrap().is_empty());
}

#[tokio::test]
async fn registry_lookups_are_tenant_scoped_except_the_documented_ones() {
    let Some(store) = store().await else { return };
    let reg = registry(&store);
    let mine = workflow(&store, OWNER).await;
    let theirs = workflow(&store, OTHER).await;
    let rows = reg.sync(OWNER, mine, 1, &[trigger("webhook", ""), trigger("queue", "ping")], at(0)).await.unwrap();
    reg.sync(OTHER, theirs, 1, &[trigger("queue", "ping"), trigger("schedule", "0 * * * *")], at(1)).await.unwrap();
    let hook = rows.iter().find(|t| t.kind == "webhook").unwrap();

    // Another tenant sees neither the rows nor the secret; a missing id answers the same.
    assert!(reg.list(OTHER, mine).await.unwrap().is_empty());
    assert_eq!(reg.webhook_secret(OTHER, hook.id).await.unwrap(), None);
    assert_eq!(reg.webhook_secret(OWNER, Uuid::new_v4()).await.unwrap(), None);
    // Registering for another tenant's workflow is as for a missing one: refused, nothing changes.
    let before = reg.list(OWNER, mine).await.unwrap();
    for triggers in [&[trigger("webhook", ""), trigger("schedule", "1 * * * *")][..], &[][..]] {
        for workflow in [mine, Uuid::new_v4()] {
            let refused = reg.sync(OTHER, workflow, 9, triggers, at(5)).await;
            assert!(matches!(refused, Err(triggers::Error::Database(sqlx::Error::RowNotFound))), "{refused:?}");
        }
    }
    assert_eq!(reg.list(OWNER, mine).await.unwrap(), before);
    let foreign: i64 = sqlx::query_scalar("SELECT count(*) FROM triggers WHERE workflow_id = $1 AND tenant_id <> $2")
        .bind(mine)
        .bind(OWNER)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(foreign, 0);

    // The lookups that find the tenant: by workflow id (the signature is checked next), the queue
    // event across tenants in registration order, and the scheduler's scan.
    let (found, secret) = reg.webhook(mine).await.unwrap().unwrap();
    assert_eq!((found.id, found.tenant_id.as_str()), (hook.id, OWNER));
    assert_eq!(Some(secret), reg.webhook_secret(OWNER, hook.id).await.unwrap());
    assert!(reg.webhook(theirs).await.unwrap().is_none(), "no webhook trigger there");
    let targets = reg.queue_targets("ping", None).await.unwrap();
    assert_eq!(
        targets.iter().map(|t| (t.tenant_id.as_str(), t.workflow_id)).collect::<Vec<_>>(),
        [(OWNER, mine), (OTHER, theirs)]
    );
    assert!(reg.queue_targets("pong", None).await.unwrap().is_empty());
    // A message that names its tenant (every `POST /v1/events`) finds that tenant's only.
    for (tenant, workflow) in [(OWNER, mine), (OTHER, theirs)] {
        let scoped = reg.queue_targets("ping", Some(tenant)).await.unwrap();
        assert_eq!(scoped.iter().map(|t| t.workflow_id).collect::<Vec<_>>(), [workflow]);
    }
    assert!(reg.queue_targets("ping", Some("nobody")).await.unwrap().is_empty());
    assert_eq!(reg.schedules().await.unwrap().iter().map(|t| t.workflow_id).collect::<Vec<_>>(), [theirs]);

    // A deleted workflow's triggers are found by none of them.
    store.delete_workflow(OWNER, mine).await.unwrap();
    assert!(reg.webhook(mine).await.unwrap().is_none());
    assert_eq!(
        reg.queue_targets("ping", None).await.unwrap().iter().map(|t| t.workflow_id).collect::<Vec<_>>(),
        [theirs]
    );
    store.delete_workflow(OTHER, theirs).await.unwrap();
    assert!(reg.schedules().await.unwrap().is_empty());
}

#[tokio::test]
async fn deliveries_are_accepted_once_and_schedules_fire_once_per_due_time() {
    let Some(store) = store().await else { return };
    let reg = registry(&store);
    let wf = workflow(&store, OWNER).await;
    let rows =
        reg.sync(OWNER, wf, 1, &[trigger("webhook", ""), trigger("schedule", "*/5 * * * *")], at(0)).await.unwrap();
    let hook = rows.iter().find(|t| t.kind == "webhook").unwrap().id;
    let schedule = rows.iter().find(|t| t.kind == "schedule").unwrap().id;

    assert!(reg.record_delivery(hook, "sha256=aa", at(1)).await.unwrap());
    assert!(!reg.record_delivery(hook, "sha256=aa", at(2)).await.unwrap(), "a replay");
    assert!(reg.record_delivery(hook, "sha256=bb", at(2)).await.unwrap());
    // Forgotten (its start failed): the sender's retry is accepted.
    reg.forget_delivery(hook, "sha256=bb").await.unwrap();
    assert!(reg.record_delivery(hook, "sha256=bb", at(3)).await.unwrap());
    // Beyond twice the replay window a delivery is pruned (its timestamp cannot pass any more).
    assert!(reg.record_delivery(hook, "sha256=aa", at(1) + Duration::minutes(11)).await.unwrap());

    // mark_fired is for webhooks and queues; a schedule's fire time moves only by claim_fire.
    reg.mark_fired(hook, at(4)).await.unwrap();
    reg.mark_fired(schedule, at(4)).await.unwrap();
    let fired =
        |rows: Vec<triggers::TriggerRow>, id: Uuid| rows.into_iter().find(|t| t.id == id).unwrap().last_fired_at;
    assert_eq!(fired(reg.list(OWNER, wf).await.unwrap(), hook), Some(at(4)));
    assert_eq!(fired(reg.list(OWNER, wf).await.unwrap(), schedule), None);

    // Two schedulers claim the same due time: exactly one wins; the next claim starts from it.
    let (a, b) = tokio::join!(reg.claim_fire(schedule, None, at(5)), reg.claim_fire(schedule, None, at(5)));
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|won| **won).count(), 1);
    assert!(!reg.claim_fire(schedule, None, at(10)).await.unwrap(), "claimed from a stale view");
    assert!(reg.claim_fire(schedule, Some(at(5)), at(10)).await.unwrap());
    let row = reg.list(OWNER, wf).await.unwrap().into_iter().find(|t| t.id == schedule).unwrap();
    assert_eq!((row.last_fired_at, row.counting_from()), (Some(at(10)), at(10)));
    // A disabled schedule cannot be claimed.
    reg.sync(OWNER, wf, 2, &[trigger("webhook", "")], at(11)).await.unwrap();
    assert!(!reg.claim_fire(schedule, Some(at(10)), at(15)).await.unwrap());
}

struct Pending {
    approvals: Approvals,
    execution: Uuid,
    arn: String,
}

async fn pending(store: &Store, token: &str, timeout_at: Option<DateTime<Utc>>) -> (Pending, triggers::Approval) {
    let wf = workflow(store, OWNER).await;
    let (execution, arn) = store::testing::execution(store, OWNER, wf, true).await.unwrap();
    let approvals = Approvals::new(store.pool().clone());
    let approval = approvals
        .create(NewApproval {
            tenant: OWNER.into(),
            execution_id: execution,
            node_id: "review".into(),
            task_token: token.into(),
            message: "Ship it?".into(),
            timeout_at,
        })
        .await
        .unwrap();
    (Pending { approvals, execution, arn }, approval)
}

fn claim(decision: Decision, by: &str, now: DateTime<Utc>) -> Claim<'_> {
    Claim { decision, by, comment: Some("looks good"), output: None, now }
}

#[tokio::test]
async fn approvals_are_found_by_their_execution_and_created_once_per_token() {
    let Some(store) = store().await else { return };
    let (p, approval) = pending(&store, "token-1", None).await;
    assert_eq!((approval.status.as_str(), approval.tenant_id.as_str()), ("pending", OWNER));
    // A retried approval function invocation finds the row it wrote.
    let again = p
        .approvals
        .create(NewApproval {
            tenant: OWNER.into(),
            execution_id: p.execution,
            node_id: "review".into(),
            task_token: "token-1".into(),
            message: "another message".into(),
            timeout_at: None,
        })
        .await
        .unwrap();
    assert_eq!(again, approval);

    // By recorded ARN, and by the execution's name before the ARN is recorded.
    assert_eq!(p.approvals.execution_of(&p.arn).await.unwrap(), Some((p.execution, OWNER.to_owned())));
    let wf = workflow(&store, OTHER).await;
    let (unrecorded, arn) = store::testing::execution(&store, OTHER, wf, false).await.unwrap();
    assert_eq!(p.approvals.execution_of(&arn).await.unwrap(), Some((unrecorded, OTHER.to_owned())));
    let (machine, name) = (format!("weft-{wf}"), Uuid::new_v4().to_string());
    let unknown = arn::ExecutionArn::new(store::testing::REGION, store::testing::ACCOUNT, &machine, &name).to_string();
    assert_eq!(p.approvals.execution_of(&unknown).await.unwrap(), None);
    assert_eq!(p.approvals.execution_of("not an arn").await.unwrap(), None);

    // Another tenant: no approval, no execution status, nothing pending.
    assert_eq!(p.approvals.get(OTHER, approval.id).await.unwrap(), None);
    assert_eq!(p.approvals.execution_status(OTHER, approval.id).await.unwrap(), None);
    assert!(p.approvals.list_pending(OTHER, at(0), 50).await.unwrap().is_empty());
    assert_eq!(p.approvals.execution_status(OWNER, approval.id).await.unwrap().as_deref(), Some("PENDING"));
    let listed = p.approvals.list_pending(OWNER, at(0), 50).await.unwrap();
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), [approval.id]);

    // An execution that is over no longer lists its approval.
    sqlx::query("UPDATE executions SET status = 'ABORTED' WHERE id = $1")
        .bind(p.execution)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(p.approvals.list_pending(OWNER, at(0), 50).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_decision_is_made_once() {
    let Some(store) = store().await else { return };
    let (p, approval) = pending(&store, "token-2", None).await;
    let output = json!({"approved": true});

    // Another tenant cannot decide it: as for a missing approval.
    let theirs = p.approvals.claim(OTHER, approval.id, claim(Decision::Reject, "mallory", at(1))).await;
    assert!(matches!(theirs, Err(DecideError::NotFound)), "{theirs:?}");
    let missing = p.approvals.claim(OWNER, Uuid::new_v4(), claim(Decision::Reject, "bob", at(1))).await;
    assert!(matches!(missing, Err(DecideError::NotFound)), "{missing:?}");

    // Two deciders at once: one claim wins, the other learns what was decided.
    let approve = Claim { output: Some(&output), ..claim(Decision::Approve, "alice", at(2)) };
    let (a, b) = tokio::join!(
        p.approvals.claim(OWNER, approval.id, approve),
        p.approvals.claim(OWNER, approval.id, claim(Decision::Reject, "bob", at(2)))
    );
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one claim must win: {other:?}"),
    };
    assert!(matches!(&lost, DecideError::AlreadyDecided(s) if *s == won.status), "{lost:?} vs {}", won.status);
    let stored = p.approvals.get(OWNER, approval.id).await.unwrap().unwrap();
    assert_eq!(stored, won);
    assert_eq!((stored.decided_at, stored.comment.as_deref()), (Some(at(2)), Some("looks good")));

    // Later decisions change nothing.
    let late = p.approvals.claim(OWNER, approval.id, claim(Decision::Approve, "carol", at(3))).await;
    assert!(matches!(&late, Err(DecideError::AlreadyDecided(s)) if *s == won.status), "{late:?}");
    assert_eq!(p.approvals.get(OWNER, approval.id).await.unwrap().unwrap(), won);
    assert!(p.approvals.list_pending(OWNER, at(3), 50).await.unwrap().is_empty());

    // A decision that could not be delivered is released, and can then be made again.
    p.approvals.release(OWNER, approval.id).await.unwrap();
    let released = p.approvals.get(OWNER, approval.id).await.unwrap().unwrap();
    assert_eq!((released.status.as_str(), released.decided_by, released.output), ("pending", None, None));
    let redo = p.approvals.claim(OWNER, approval.id, claim(Decision::Reject, "dave", at(4))).await.unwrap();
    assert_eq!((redo.status.as_str(), redo.decided_by.as_deref()), ("rejected", Some("dave")));
}

#[tokio::test]
async fn an_expired_approval_times_out_instead_of_being_decided() {
    let Some(store) = store().await else { return };
    let (p, approval) = pending(&store, "token-3", Some(at(10))).await;
    assert_eq!(p.approvals.list_pending(OWNER, at(9), 50).await.unwrap().len(), 1);
    assert!(p.approvals.list_pending(OWNER, at(10), 50).await.unwrap().is_empty(), "expired at its timeout");

    let late = p.approvals.claim(OWNER, approval.id, claim(Decision::Approve, "alice", at(10))).await;
    assert!(matches!(late, Err(DecideError::Expired(t)) if t == at(10)), "{late:?}");
    assert_eq!(p.approvals.get(OWNER, approval.id).await.unwrap().unwrap().status, "timed_out");
    // Timed out stays timed out, even for a claim that says it is earlier; release is for decisions only.
    let early = p.approvals.claim(OWNER, approval.id, claim(Decision::Approve, "alice", at(1))).await;
    assert!(matches!(early, Err(DecideError::Expired(_))), "{early:?}");
    p.approvals.release(OWNER, approval.id).await.unwrap();
    assert_eq!(p.approvals.get(OWNER, approval.id).await.unwrap().unwrap().status, "timed_out");
}
