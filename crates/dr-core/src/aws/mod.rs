//! The AWS layer: the one place SDK clients are built ([`AwsClients`]), the call log every client
//! carries ([`calls`]), the lookups every layer above shares ([`lookup`]), S3 objects ([`objects`])
//! and batched metric reads ([`metrics`]).
//!
//! Configuration (credentials, retry, `AWS_ENDPOINT_URL`) is loaded from the environment once;
//! each region's clients are derived from it. When an endpoint override is set (the emulator),
//! S3 uses path-style addressing, since `bucket.127.0.0.1` does not resolve.

pub mod accounts;
pub mod calls;
pub mod dns;
pub mod hooks;
pub mod identity;
pub mod lookup;
pub mod metrics;
pub mod objects;
pub mod once;
pub mod postgres;
pub mod tls;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{Region, SdkConfig};

pub use calls::{ApiCall, ApiCallLog};

use crate::plan::{Direction, Plan};

/// Route53's control plane (records, health checks) and its health-check metrics live here.
pub const ROUTE53_CONTROL_REGION: &str = "us-east-1";

/// Clients for one region.
#[derive(Debug, Clone)]
pub struct RegionClients {
    pub region: String,
    /// The DR load balancer's listener certificates (readiness).
    pub acm: aws_sdk_acm::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// The plan's ECS services (`[[ecs_services]]`): scaled by the compute branch, read by readiness.
    pub ecs: aws_sdk_ecs::Client,
    /// Each notice's event (`notify`). Not in the call log, as SNS.
    pub events: aws_sdk_eventbridge::Client,
    /// The DR load balancer: its listeners, target groups and target health.
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// The keys the DR side decrypts with (readiness: enabled in the region).
    pub kms: aws_sdk_kms::Client,
    /// Invokes hooks a plan names (the restore test's SQL probe).
    pub lambda: aws_sdk_lambda::Client,
    pub rds: aws_sdk_rds::Client,
    pub s3: aws_sdk_s3::Client,
    /// The database's credentials (`database.credentials_secret`).
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sfn: aws_sdk_sfn::Client,
    /// The account's EC2 vCPU quota in the region (readiness: the failover capacity fits).
    pub quotas: aws_sdk_servicequotas::Client,
    /// Notifications (`notify`). Not in the call log: a message changes nothing in the estate.
    pub sns: aws_sdk_sns::Client,
    /// Who is calling ([`identity`]): the approver of a decision, the deployment's account.
    pub sts: aws_sdk_sts::Client,
}

/// The variable that names the deployment's notification topic (an ARN, set by template.yaml);
/// unset or empty: nothing is published (`notify`).
pub const NOTIFY_TOPIC_ENV: &str = "NOTIFY_TOPIC_ARN";
/// The variable that names the event bus each notice's event goes to (set by template.yaml: the
/// region's default bus); unset or empty: no event is put (`notify`).
pub const NOTICE_EVENT_BUS_ENV: &str = "NOTICE_EVENT_BUS";

/// Everything a plan's steps talk to: the primary region, the DR region and Route53.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub primary: RegionClients,
    pub dr: RegionClients,
    /// The plan's DR region as the plan is written, where the deployment lives whichever way a
    /// move goes: the plan store and reports, the database secret, the plan's hook Lambdas, the
    /// routing alarm and metric. `dr` in a failover; `primary` in a failback ([`Self::facing`]).
    pub home: RegionClients,
    /// Route53 is global; its API is served from us-east-1. The plan's DNS section's account
    /// (`[accounts.dns]`, else the orchestrator's): the hosted zone, the failover records, the
    /// routing health check.
    pub route53: aws_sdk_route53::Client,
    /// CloudWatch in the home region, in the DNS section's account: the routing alarm, and the
    /// routing metric the runbook publishes (a Route 53 health check follows an alarm of its own
    /// account only).
    pub routing: aws_sdk_cloudwatch::Client,
    /// Route53 in the orchestrator's own account: the detection health checks, on which the
    /// trigger's alarms are.
    pub detection_route53: aws_sdk_route53::Client,
    /// CloudWatch in us-east-1, where Route53 publishes `AWS/Route53 HealthCheckStatus`.
    pub route53_metrics: aws_sdk_cloudwatch::Client,
    /// DNS answers (Route 53's data plane), as a resolver gives them.
    pub dns: dns::Dns,
    endpoint_url: Option<String>,
    /// Every request any of these clients sent, in order.
    pub calls: ApiCallLog,
    /// The deployment's notification topic (`notify::TOPIC_ENV`), if it has one.
    pub notify_topic: Option<String>,
    /// The event bus of each notice's event (`NOTICE_EVENT_BUS_ENV`), if it has one.
    pub notice_bus: Option<String>,
}

impl AwsClients {
    /// Loads the shared configuration from the environment and builds the clients of a plan.
    /// A reversed plan ([`Plan::facing`]) gets its clients faced the same way.
    /// A plan with sections in other accounts (`[accounts]`) gets clients that assume each
    /// section's member role on first use, with session name `session` (`accounts`).
    pub async fn for_plan(plan: &Plan, session: &str) -> AwsClients {
        let (_, dr) = plan.written_regions();
        let shared = tls::sdk_config_loader().region(Region::new(dr.to_string())).load().await;
        AwsClients::for_plan_from(&shared, plan, session)
    }

    /// [`Self::for_plan`] from an already loaded configuration: the plan's regions, each section
    /// in its account, faced as the plan moves.
    pub fn for_plan_from(shared: &SdkConfig, plan: &Plan, session: &str) -> AwsClients {
        let (primary, dr) = plan.written_regions();
        let mut clients = AwsClients::from_config(shared, primary, dr);
        if let Some(dns) = &plan.accounts.dns {
            let member = accounts::member_config(shared, dns, session);
            let calls = clients.calls.as_role(&dns.role_arn());
            clients.route53 = route53_client(&member, &calls);
            clients.routing = cloudwatch_client(&in_region(&member, dr), &calls);
        }
        clients.facing(plan.move_direction())
    }

    pub async fn for_regions(primary_region: &str, dr_region: &str) -> AwsClients {
        // Each client gets its region from the plan: no region lookup (env, profile, IMDS) needed.
        let shared = tls::sdk_config_loader().region(Region::new(dr_region.to_string())).load().await;
        AwsClients::from_config(&shared, primary_region, dr_region)
    }

    /// Builds the clients from an already loaded configuration (a Lambda loads it once at start).
    pub fn from_config(shared: &SdkConfig, primary_region: &str, dr_region: &str) -> AwsClients {
        let calls = ApiCallLog::default();
        let control = in_region(shared, ROUTE53_CONTROL_REGION);
        AwsClients {
            primary: RegionClients::new(shared, primary_region, &calls),
            dr: RegionClients::new(shared, dr_region, &calls),
            home: RegionClients::new(shared, dr_region, &calls),
            route53: route53_client(shared, &calls),
            routing: cloudwatch_client(&in_region(shared, dr_region), &calls),
            detection_route53: route53_client(shared, &calls),
            route53_metrics: cloudwatch_client(&control, &calls),
            dns: dns::Dns::from_env(),
            endpoint_url: shared.endpoint_url().map(str::to_string),
            calls,
            notify_topic: std::env::var(NOTIFY_TOPIC_ENV).ok().filter(|topic| !topic.is_empty()),
            notice_bus: std::env::var(NOTICE_EVENT_BUS_ENV).ok().filter(|bus| !bus.is_empty()),
        }
    }

    /// The clients as a move in `direction` uses them, with [`Plan::facing`]'s plan: a failback's
    /// `primary` is Ireland and its `dr` Paris; `home` stays.
    pub fn facing(&self, direction: Direction) -> AwsClients {
        match direction {
            Direction::ToDr => self.clone(),
            Direction::ToPrimary => AwsClients { primary: self.dr.clone(), dr: self.primary.clone(), ..self.clone() },
        }
    }

    /// The endpoint override in force (`AWS_ENDPOINT_URL`), if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }
}

impl RegionClients {
    pub fn new(shared: &SdkConfig, region: &str, calls: &ApiCallLog) -> RegionClients {
        let config = in_region(shared, region);
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .interceptor(calls.clone())
            .build();
        RegionClients {
            region: region.to_string(),
            acm: aws_sdk_acm::Client::from_conf(
                aws_sdk_acm::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            ecs: aws_sdk_ecs::Client::from_conf(
                aws_sdk_ecs::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            events: aws_sdk_eventbridge::Client::new(&config),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            sfn: aws_sdk_sfn::Client::from_conf(
                aws_sdk_sfn::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            quotas: aws_sdk_servicequotas::Client::from_conf(
                aws_sdk_servicequotas::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            sns: aws_sdk_sns::Client::new(&config),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
        }
    }
}

/// The calls of one step to the primary region share this budget, whatever their number: during
/// a regional event Paris may accept connections and never answer, and a step must still finish
/// well within its function's timeout (60 s). What did not answer in time is reported as such.
pub const PRIMARY_REGION_BUDGET: Duration = Duration::from_secs(8);

/// Runs a call to the primary region within the step's shared deadline (`PRIMARY_REGION_BUDGET`
/// from the step's start): `AwsTransient` when the region did not answer in time.
pub async fn within_primary_budget<T>(
    deadline: tokio::time::Instant,
    region: &str,
    call: impl Future<Output = Result<T, crate::error::DrError>>,
) -> Result<T, crate::error::DrError> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(crate::error::DrError::AwsTransient {
            service: "primary region",
            operation: "budget",
            message: format!("{region} did not answer within {} s", PRIMARY_REGION_BUDGET.as_secs()),
        }),
    }
}

/// Every call gives up after this long, each attempt sooner: a region that accepts connections
/// and never answers (Paris, during the outage) must not hold a step until the Lambda times out.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);

/// Route 53's control plane (us-east-1), recording its calls in `calls`.
fn route53_client(config: &SdkConfig, calls: &ApiCallLog) -> aws_sdk_route53::Client {
    let control = in_region(config, ROUTE53_CONTROL_REGION);
    aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&control).interceptor(calls.clone()).build(),
    )
}

/// CloudWatch in `config`'s region, recording its calls in `calls`.
fn cloudwatch_client(config: &SdkConfig, calls: &ApiCallLog) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(config).interceptor(calls.clone()).build(),
    )
}

fn in_region(shared: &SdkConfig, region: &str) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    shared.to_builder().region(Region::new(region.to_string())).timeout_config(timeouts).build()
}
