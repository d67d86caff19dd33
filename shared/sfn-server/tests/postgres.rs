//! Persistence in Postgres and restart semantics: an execution left RUNNING by a process that
//! died is FAILED with `Weft.EngineRestarted` on the next start-up, and RedriveExecution
//! finishes it. Needs `WEFT_TEST_DATABASE_URL` (skips with a note when unset, unless
//! `WEFT_TEST_STRICT=1`); each test uses a fresh database.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use common::*;
use serde_json::json;
use sfn_server::{PgStore, SfnState, SfnStore};

async fn fresh_db() -> Option<String> {
    let admin = migrations::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let url = migrations::testing::create_database(&admin).await.unwrap();
    let pg = PgStore::connect(&url, 5).await.unwrap();
    pg.migrate().await.unwrap();
    Some(url)
}

async fn pg_store(url: &str) -> Arc<dyn SfnStore> {
    Arc::new(PgStore::connect(url, 10).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_executions_fail_visibly_after_a_restart_and_redrive_to_completion() {
    let Some(url) = fresh_db().await else { return };
    let def = json!({"StartAt": "Prep", "States": {
        "Prep": {"Type": "Pass", "Result": "ready", "ResultPath": "$.prep", "Next": "Long"},
        "Long": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"prep.$": "$.prep", "rc.$": "$$.Execution.RedriveCount"}, "End": true}
    }});

    // The first process: its own runtime, shut down mid-execution as a killed process would be.
    let (url1, arn, exec_arn, stop_tx, handle) = {
        let url = url.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let server = rt.block_on(async {
                let state = SfnState::open(pg_store(&url).await, config()).await.unwrap();
                serve(state).await
            });
            tx.send(server.url.clone()).unwrap();
            stop_rx.recv().unwrap();
            std::mem::forget(server);
            rt.shutdown_background();
        });
        let url1 = rx.recv().unwrap();
        let client = sfn_server::sdk::local_client(&url1, &credentials());
        let arn = create(&client, "durable", &def).await;
        let exec_arn = client
            .start_execution()
            .state_machine_arn(&arn)
            .name("survivor")
            .input(r#"{"n": 1}"#)
            .send()
            .await
            .unwrap()
            .execution_arn;
        wait_for_event(&client, &exec_arn, HistoryEventType::WaitStateEntered).await;
        (url1, arn, exec_arn, stop_tx, handle)
    };
    stop_tx.send(()).unwrap();
    handle.join().unwrap();
    assert!(!url1.is_empty());

    // The second process on the same database, with virtual time so the Wait passes at once.
    let (state, report) =
        SfnState::open_with_report(pg_store(&url).await, config().with_clock(Arc::new(engine::VirtualClock::new())))
            .await
            .unwrap();
    assert_eq!(report.failed, std::slice::from_ref(&exec_arn));
    let s = serve(state).await;
    let c = &s.client;
    // Everything the first process stored is still there.
    let sm = c.describe_state_machine().state_machine_arn(&arn).send().await.unwrap();
    assert_eq!(sm.name, "durable");
    let d = c.describe_execution().execution_arn(&exec_arn).send().await.unwrap();
    assert_eq!(d.status, ExecutionStatus::Failed);
    assert_eq!(d.error.as_deref(), Some(sfn_server::ENGINE_RESTARTED));
    assert!(d.cause.as_deref().unwrap().contains("RedriveExecution"), "{:?}", d.cause);
    let events = history(c, &exec_arn).await;
    let last = events.last().unwrap();
    assert_eq!(last.r#type, HistoryEventType::ExecutionFailed);
    assert_eq!(last.execution_failed_event_details.as_ref().unwrap().error.as_deref(), Some("Weft.EngineRestarted"));
    let failed_count = events.len();

    c.redrive_execution().execution_arn(&exec_arn).send().await.unwrap();
    let d = finished(c, &exec_arn).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(d.output.as_deref(), Some(r#"{"prep":"ready","rc":1}"#));
    assert_eq!(d.redrive_count, Some(1));
    let events = history(c, &exec_arn).await;
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=events.len() as i64).collect::<Vec<_>>());
    assert_eq!(events[failed_count].r#type, HistoryEventType::ExecutionRedriven);
    // The redrive resumed at the Wait state that was running, with its recorded input.
    let resumed = &events[failed_count + 1];
    assert_eq!(resumed.r#type, HistoryEventType::WaitStateEntered);
    assert_eq!(
        resumed.state_entered_event_details.as_ref().unwrap().input.as_deref(),
        Some(r#"{"n":1,"prep":"ready"}"#)
    );
    assert_eq!(events.iter().filter(|e| e.r#type == HistoryEventType::PassStateEntered).count(), 2);
    assert_eq!(events.last().unwrap().r#type, HistoryEventType::ExecutionSucceeded);

    // A third start-up finds nothing to recover.
    let (_, report) = SfnState::open_with_report(pg_store(&url).await, config()).await.unwrap();
    assert!(report.failed.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_serves_every_action() {
    let Some(url) = fresh_db().await else { return };
    let s = serve(SfnState::open(pg_store(&url).await, config()).await.unwrap()).await;
    let c = &s.client;
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let arn = c
        .create_state_machine()
        .name("pg")
        .definition(def.to_string())
        .role_arn(ROLE)
        .publish(true)
        .send()
        .await
        .unwrap();
    let version = arn.state_machine_version_arn.unwrap();
    let route = aws_sdk_sfn::types::RoutingConfigurationListItem::builder()
        .state_machine_version_arn(&version)
        .weight(100)
        .build()
        .unwrap();
    let alias = c
        .create_state_machine_alias()
        .name("live")
        .routing_configuration(route)
        .send()
        .await
        .unwrap()
        .state_machine_alias_arn;
    let mut arns = Vec::new();
    for i in 0..7 {
        let e = c
            .start_execution()
            .state_machine_arn(&alias)
            .name(format!("e{i}"))
            .input(format!(r#"{{"i": {i}}}"#))
            .send()
            .await
            .unwrap();
        arns.push(e.execution_arn);
    }
    for e in &arns {
        assert_eq!(finished(c, e).await.status, ExecutionStatus::Succeeded);
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page =
            c.list_executions().state_machine_arn(&version).max_results(3).set_next_token(token).send().await.unwrap();
        seen.extend(page.executions.into_iter().map(|e| e.execution_arn));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, arns);
    let page =
        c.get_execution_history().execution_arn(&arns[0]).reverse_order(true).max_results(2).send().await.unwrap();
    assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 3]);
    assert_eq!(page.next_token.as_deref(), Some("2"));
    let err = c.start_execution().state_machine_arn(&alias).name("e0").input("{}").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_execution_already_exists(), "{err:?}");
    assert_eq!(c.list_state_machines().send().await.unwrap().state_machines.len(), 1);
}
