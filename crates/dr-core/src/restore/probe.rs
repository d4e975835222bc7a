//! The SQL probe hook: a Lambda the plan names, invoked by the validation with the restored
//! endpoint; and the shipped one, which checks that the endpoint accepts connections.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::aws::hooks::{HookEffect, invoke_hook};
use crate::error::DrError;

/// What the SQL probe hook receives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SqlProbeRequest {
    pub plan: String,
    pub run_id: String,
    pub instance: String,
    pub address: String,
    pub port: i32,
    pub engine: String,
    pub engine_version: String,
}

/// What the SQL probe hook answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SqlProbeAnswer {
    pub ok: bool,
    pub detail: String,
}

pub(crate) async fn invoke_probe(
    clients: &AwsClients,
    hook: &str,
    request: &SqlProbeRequest,
    timeout: std::time::Duration,
) -> Result<SqlProbeAnswer, DrError> {
    match invoke_hook(&clients.home, hook, request, HookEffect::Reads, timeout).await? {
        Err(failure) => Ok(SqlProbeAnswer { ok: false, detail: format!("the probe failed ({failure})") }),
        Ok(body) => serde_json::from_slice(&body).map_err(|e| DrError::InvalidInput {
            message: format!("the SQL probe {hook} answered something other than {{ok, detail}}: {e}"),
        }),
    }
}

/// The shipped SQL probe hook: the restored endpoint accepts a connection within 5 s. (Running a
/// query needs the database's credentials and a driver: a plan that wants one names its own hook.)
pub async fn connect_probe(request: &SqlProbeRequest) -> SqlProbeAnswer {
    let target = format!("{}:{}", request.address, request.port);
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => SqlProbeAnswer { ok: true, detail: format!("{target} accepts connections") },
        Ok(Err(e)) => SqlProbeAnswer { ok: false, detail: format!("{target}: {e}") },
        Err(_) => SqlProbeAnswer { ok: false, detail: format!("{target}: no answer within 5 s") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_connect_probe_tells_an_open_endpoint_from_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let open = listener.local_addr().expect("address");
        let request = |port: u16| SqlProbeRequest {
            plan: "p".into(),
            run_id: "r".into(),
            instance: "i".into(),
            address: "127.0.0.1".into(),
            port: i32::from(port),
            engine: "postgres".into(),
            engine_version: "15.7".into(),
        };
        assert!(connect_probe(&request(open.port())).await.ok);
        drop(listener);
        assert!(!connect_probe(&request(open.port())).await.ok);
    }
}
