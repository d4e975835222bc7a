//! What DNS answers for a name now: Route 53's data plane, as a resolver sees it. The runbook
//! verifies "traffic goes to Ireland" here, not through Route 53's API (its control plane lives in
//! us-east-1 and may be impaired during a regional event), and the check holds with the TTL
//! included: a cached answer is what clients get too.
//!
//! The resolver is the system's (in Lambda, the one AWS provides); `DR_DNS_RESOLVER=ip:port` names
//! another (the local stack's DNS server, which answers as Route 53 would). Nothing is cached
//! here: every question goes to the resolver.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{ResolveErrorKind, TokioResolver};

use crate::error::DrError;

/// The environment variable that names the resolver to ask (`ip:port`) instead of the system's.
pub const RESOLVER_ENV: &str = "DR_DNS_RESOLVER";

/// Asks DNS.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    resolver: Option<SocketAddr>,
}

impl Dns {
    /// The system's resolver, or the one `DR_DNS_RESOLVER` names.
    pub fn from_env() -> Dns {
        Dns { resolver: std::env::var(RESOLVER_ENV).ok().and_then(|address| address.parse().ok()) }
    }

    fn resolver(&self) -> Result<TokioResolver, DrError> {
        let mut options = ResolverOpts::default();
        options.cache_size = 0;
        options.timeout = Duration::from_secs(2);
        options.attempts = 2;
        let builder = match self.resolver {
            Some(address) => {
                let servers = NameServerConfigGroup::from_ips_clear(&[address.ip()], address.port(), true);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, Vec::new(), servers),
                    TokioConnectionProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|e| DrError::AwsTransient {
                service: "dns",
                operation: "Resolve",
                message: format!("no system resolver configuration: {e}"),
            })?,
        };
        Ok(builder.with_options(options).build())
    }

    /// The values DNS answers for `name` (`A`, `AAAA` or `CNAME`), each without a trailing dot; an
    /// empty list when the name has no such record.
    pub async fn answer(&self, name: &str, record_type: &str) -> Result<Vec<String>, DrError> {
        let kind = match record_type {
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            _ => RecordType::CNAME,
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver()?.lookup(fqdn.as_str(), kind).await {
            Ok(lookup) => Ok(lookup
                .record_iter()
                .filter(|record| record.record_type() == kind)
                .map(|record| match record.data() {
                    RData::CNAME(target) => target.0.to_utf8().trim_end_matches('.').to_string(),
                    other => other.to_string(),
                })
                .collect()),
            Err(err) if matches!(err.kind(), ResolveErrorKind::Proto(proto) if proto.is_no_records_found()) => {
                Ok(Vec::new())
            }
            Err(err) => Err(DrError::AwsTransient {
                service: "dns",
                operation: "Resolve",
                message: format!("{fqdn} {record_type}: {err}"),
            }),
        }
    }
}
