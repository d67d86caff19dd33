//! Shared helpers: a client for a scripted server.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use model_client::testing::ScriptedServer;
use model_client::{ChatRequest, Client, Message, Provider};

pub const KEY: &str = "sk-test-0123456789abcdef";

pub async fn server_and_client() -> (ScriptedServer, Client) {
    let server = ScriptedServer::start().await;
    let client = client_for(&server, Some(Duration::from_secs(30)));
    (server, client)
}

pub fn client_for(server: &ScriptedServer, timeout: Option<Duration>) -> Client {
    let provider = Provider::new(server.base_url()).with_api_key(KEY).with_timeout(timeout);
    Client::new(provider, reqwest::Client::new()).unwrap()
}

pub fn ask(text: &str) -> ChatRequest {
    ChatRequest::new("gpt-4o-mini", vec![Message::system("Be brief."), Message::user(text)])
}
