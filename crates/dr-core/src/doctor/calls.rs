//! The calls each function of the stack makes, on the plan's real resources: the same actions,
//! resources and context keys the local stack's IAM enforcement authorizes the functions' calls on
//! (`crates/dr-emulator/moto/iam_requests.py`), here written per function so that IAM's own
//! simulator can decide them on the real account. `scripts/iam_report.py` checks at the end of the
//! suite that every action a function was authorized for locally is in this table.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::DeployedStack;
use crate::aws::AwsClients;
use crate::aws::lookup::{describe_auto_scaling_group, describe_db_instance, describe_standby_group};
use crate::notify::EVENT_SOURCE;
use crate::plan::{Database, DnsStrategy, Plan, lambda_function_name};
use crate::readiness::scheduled::{history_prefix as readiness_history_prefix, snapshot_key as readiness_snapshot_key};
use crate::report::RUNS_NAMESPACE;
use crate::restore::{INSTANCE_PREFIX, RESTORE_TEST_TAG};
use crate::rpo::check::{heartbeat_key, snapshot_key as rpo_snapshot_key};

/// One call a function makes: the action, the resource ARN it is authorized on, the request's
/// context keys, and why the function makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedCall {
    /// The function's logical id in template.yaml.
    pub function: String,
    pub action: String,
    pub resource: String,
    pub context: Vec<(String, String)>,
    /// Static, in role words ("the primary region", "the DR region"): true of any plan, and the
    /// call's region is in its context (`aws:RequestedRegion`).
    pub why: &'static str,
}

/// What the table needs that only the account knows: the standby instances' ids, the groups'
/// ARNs (Auto Scaling ARNs carry a generated id).
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Each standby group's instance ids, in the plan's order (a group none of whose instances is
    /// found: empty).
    pub standby_instances: Vec<Vec<String>>,
    /// Each DR group's ARN, by name, of those found.
    pub dr_group_arns: BTreeMap<String, String>,
    /// Each primary-region application group's ARN (the fence's), by name, of those found.
    pub fence_group_arns: BTreeMap<String, String>,
    /// The replicas' storage keys, of those encrypted.
    pub replica_keys: Vec<String>,
}

impl Found {
    /// Read-only lookups; what cannot be found is written with a wildcard the policies match.
    pub async fn look_up(clients: &AwsClients, plan: &Plan) -> Found {
        let mut standby_instances = Vec::with_capacity(plan.standby_instances.len());
        for group in &plan.standby_instances {
            let ids = describe_standby_group(&clients.dr.ec2, group).await.unwrap_or_default();
            standby_instances.push(ids.into_iter().map(|i| i.id).collect());
        }
        let group_arns = |client: &aws_sdk_autoscaling::Client, names: Vec<String>| {
            let client = client.clone();
            async move {
                let mut arns = BTreeMap::new();
                for name in names {
                    let group = describe_auto_scaling_group(&client, &name).await.ok().flatten();
                    if let Some(arn) = group.as_ref().and_then(|g| g.auto_scaling_group_arn()) {
                        arns.insert(name, arn.to_string());
                    }
                }
                arns
            }
        };
        let fence_groups = plan.fence.iter().flat_map(|f| f.auto_scaling_group.clone()).collect();
        let dr_groups = plan.auto_scaling.iter().map(|a| a.group.clone()).collect();
        let mut replica_keys = Vec::new();
        for db in &plan.databases {
            let replica = describe_db_instance(&clients.dr.rds, &db.replica_instance).await.ok().flatten();
            replica_keys.extend(
                replica
                    .filter(|db| db.storage_encrypted() == Some(true))
                    .and_then(|db| db.kms_key_id().map(str::to_string)),
            );
        }
        Found {
            replica_keys,
            standby_instances,
            dr_group_arns: group_arns(&clients.dr.autoscaling, dr_groups).await,
            fence_group_arns: group_arns(&clients.primary.autoscaling, fence_groups).await,
        }
    }
}

struct Table<'a> {
    plan: &'a Plan,
    stack: &'a DeployedStack,
    calls: Vec<ExpectedCall>,
}

impl Table<'_> {
    fn add(&mut self, function: &str, region: &str, actions: &[&str], resource: String, why: &'static str) {
        self.add_with::<&str>(function, region, actions, resource, &[], why);
    }

    /// The same calls on each of several resources (each of the plan's databases).
    fn add_each(&mut self, function: &str, region: &str, actions: &[&str], resources: &[String], why: &'static str) {
        for resource in resources {
            self.add(function, region, actions, resource.clone(), why);
        }
    }

    /// Each database's instance ARN in `region`: its primary's, or its replica's.
    fn dbs(&self, region: &str, instance: fn(&Database) -> &String) -> Vec<String> {
        self.plan.databases.iter().map(|db| self.db(region, instance(db))).collect()
    }

    fn add_with<K: AsRef<str>>(
        &mut self,
        function: &str,
        region: &str,
        actions: &[&str],
        resource: String,
        context: &[(K, String)],
        why: &'static str,
    ) {
        for action in actions {
            // Every SDK call is HTTPS (the plan store's policy denies any other).
            let mut keys = vec![
                ("aws:RequestedRegion".to_string(), region.to_string()),
                ("aws:SecureTransport".to_string(), "true".to_string()),
            ];
            keys.extend(context.iter().map(|(k, v)| (k.as_ref().to_string(), v.clone())));
            self.calls.push(ExpectedCall {
                function: function.to_string(),
                action: (*action).to_string(),
                resource: resource.clone(),
                context: keys,
                why,
            });
        }
    }

    fn account(&self) -> &str {
        &self.stack.account
    }

    fn db(&self, region: &str, id: &str) -> String {
        format!("arn:aws:rds:{region}:{}:db:{id}", self.account())
    }

    fn object(bucket: &str, key: &str) -> String {
        format!("arn:aws:s3:::{bucket}/{key}")
    }

    fn bucket(bucket: &str) -> String {
        format!("arn:aws:s3:::{bucket}")
    }

    fn function_arn(&self, region: &str, named: &str) -> String {
        format!("arn:aws:lambda:{region}:{}:function:{}", self.account(), lambda_function_name(named))
    }

    /// The plan's ECS services, each by its ARN in the deployment's account.
    fn ecs_services(&mut self, function: &str, actions: &[&str], why: &'static str) {
        let region = self.plan.dr_region.clone();
        let account = self.account().to_string();
        let services: Vec<String> = self
            .plan
            .ecs_services
            .iter()
            .map(|s| format!("arn:aws:ecs:{region}:{account}:service/{}/{}", s.cluster, s.service))
            .collect();
        for arn in services {
            self.add(function, &region, actions, arn, why);
        }
    }

    fn store(&self) -> &str {
        self.stack.output("PlanStateBucketName").unwrap_or_else(|| self.stack.parameter("PlanStateBucketName"))
    }

    fn topic(&self) -> Option<String> {
        self.stack.output("NotificationTopicArn").map(str::to_string)
    }

    /// A state machine's ARN, from the stack's outputs (`<LogicalId>Arn`).
    fn state_machine(&self, logical_id: &str) -> String {
        self.stack.output(&format!("{logical_id}Arn")).map_or_else(
            || format!("arn:aws:states:{}:{}:stateMachine:{logical_id}", self.plan.dr_region, self.account()),
            str::to_string,
        )
    }

    /// What preflight, the readiness check, the report and the round trip read of the estate.
    fn plan_check_reads(&mut self, function: &str) {
        let (p, d) = (self.plan.primary_region.clone(), self.plan.dr_region.clone());
        let primary = self.dbs(&p, |db| &db.primary_instance);
        let replica = self.dbs(&d, |db| &db.replica_instance);
        self.add_each(
            function,
            &p,
            &["rds:DescribeDBInstances", "rds:ListTagsForResource"],
            &primary,
            "the primary database's status and its run tags",
        );
        self.add_each(
            function,
            &d,
            &["rds:DescribeDBInstances", "rds:ListTagsForResource"],
            &replica,
            "the replica's status, source and run tags",
        );
        let dns_here = !self.dns_account_role(function, "the DNS rows, read in the DNS account");
        if dns_here && self.plan.dns.strategy == DnsStrategy::RecordUpsert {
            // record-upsert: the records are the failover state, read through Route 53's API.
            self.route53_records(function, "the failover records");
        }
        self.add(function, &d, &["cloudwatch:GetMetricData"], "*".into(), "the replica's lag");
        self.add(function, &d, &["ec2:DescribeInstances"], "*".into(), "the standby instances");
        self.add(function, &d, &["autoscaling:DescribeAutoScalingGroups"], "*".into(), "the DR group's size");
        self.ecs_services(function, &["ecs:DescribeServices"], "the DR ECS services at their standby count");
        if let (true, Some(routing)) = (dns_here, &self.plan.dns.routing) {
            let alarm = format!("arn:aws:cloudwatch:{d}:{}:alarm:{}", self.account(), routing.alarm);
            self.add(function, &d, &["cloudwatch:DescribeAlarms"], alarm, "the routing alarm");
        }
        for pair in &self.plan.s3_replication {
            let (source, replica) = (Self::bucket(&pair.source_bucket), Self::bucket(&pair.replica_bucket));
            self.add(
                function,
                &p,
                &["s3:ListBucket", "s3:GetReplicationConfiguration"],
                source,
                "the replication rule",
            );
            self.add(function, &d, &["s3:ListBucket"], replica, "the replica bucket exists");
        }
        let reports = Self::bucket(&self.plan.reports.bucket);
        self.add(function, &d, &["s3:ListBucket"], reports, "the report bucket exists");
    }

    /// Each standby instance's ARN (`instance/*` for a group none of whose instances is found: the
    /// policies' own pattern), with its group's tag as the instance's `aws:ResourceTag` and EC2's
    /// own spelling of it. None when the plan has no standby instances (the stack then grants no
    /// start or stop).
    fn standby_instance_arns(&self, found: &Found) -> Vec<(String, Vec<(String, String)>)> {
        let (region, account) = (&self.plan.dr_region, self.account());
        let none = Vec::new();
        let found_ids = found.standby_instances.iter().chain(std::iter::repeat(&none));
        let mut arns = Vec::new();
        for (group, ids) in self.plan.standby_instances.iter().zip(found_ids).filter(|(group, _)| group.selects_any()) {
            let context: Vec<(String, String)> = group
                .tag
                .iter()
                .flat_map(|tag| {
                    ["aws:ResourceTag", "ec2:ResourceTag"]
                        .map(|prefix| (format!("{prefix}/{}", tag.key), tag.value.clone()))
                })
                .collect();
            let ids = if ids.is_empty() { vec!["*".to_string()] } else { ids.clone() };
            arns.extend(
                ids.iter().map(|id| (format!("arn:aws:ec2:{region}:{account}:instance/{id}"), context.clone())),
            );
        }
        arns
    }

    /// With the DNS in another account (`[accounts.dns]`), the function's own role only assumes
    /// the member role there (whose own calls this table does not hold: the member role is not
    /// simulated yet); whether it did.
    fn dns_account_role(&mut self, function: &str, why: &'static str) -> bool {
        let Some(member) = &self.plan.accounts.dns else { return false };
        let (region, role) = (self.plan.dr_region.clone(), member.role_arn());
        self.add(function, &region, &["sts:AssumeRole"], role, why);
        true
    }

    /// Route 53's API on the plan's zone (us-east-1): find it, read its records.
    fn route53_records(&mut self, function: &str, why: &'static str) {
        let zone = format!("arn:aws:route53:::hostedzone/{}", self.stack.parameter("HostedZoneId"));
        self.add(function, "us-east-1", &["route53:ListHostedZonesByName"], "*".into(), why);
        self.add(function, "us-east-1", &["route53:ListResourceRecordSets"], zone, why);
    }

    fn publish(&mut self, function: &str, why: &'static str) {
        let region = self.plan.dr_region.clone();
        if let Some(topic) = self.topic() {
            self.add(function, &region, &["sns:Publish"], topic, why);
        }
        // The notice's event, for the on-call tools (notify::put_event).
        let bus = format!("arn:aws:events:{region}:{}:event-bus/default", self.account());
        let source = [("events:source", EVENT_SOURCE.to_string())];
        self.add_with(function, &region, &["events:PutEvents"], bus, &source, why);
    }

    /// A report writer's run metrics (report::publish_run_metrics).
    fn run_metrics(&mut self, function: &str) {
        let region = self.plan.dr_region.clone();
        let namespace = [("cloudwatch:namespace", RUNS_NAMESPACE.to_string())];
        let why = "the run's outcome and RTO on the dashboard";
        self.add_with(function, &region, &["cloudwatch:PutMetricData"], "*".into(), &namespace, why);
    }

    fn plan_state(&mut self, function: &str, actions: &[&str], why: &'static str) {
        let (d, store) = (self.plan.dr_region.clone(), self.store().to_string());
        let key = format!("state/{}.json", self.plan.name);
        // Every state write is conditional (the single flight): the store's policy refuses others.
        let conditional = [("s3:if-none-match", "*".to_string())];
        for action in actions {
            let context: &[(&str, String)] = if *action == "s3:PutObject" { &conditional } else { &[] };
            self.add_with(function, &d, &[action], Self::object(&store, &key), context, why);
        }
        self.add(
            function,
            &d,
            &["s3:ListBucket"],
            Self::bucket(&store),
            "a missing state reads as missing, not denied",
        );
    }

    fn published_plan(&mut self, function: &str) {
        let (d, store) = (self.plan.dr_region.clone(), self.store().to_string());
        let key = format!("plans/{}.toml", self.plan.name);
        self.add(function, &d, &["s3:GetObject"], Self::object(&store, &key), "the published plan");
    }

    fn plan_version(&mut self, function: &str) {
        let (d, store) = (self.plan.dr_region.clone(), self.store().to_string());
        let key = format!("plan-versions/{}/doctor.toml", self.plan.name);
        self.add(function, &d, &["s3:GetObject"], Self::object(&store, &key), "the plan version the run took");
        self.add(
            function,
            &d,
            &["s3:ListBucket"],
            Self::bucket(&store),
            "a missing version reads as missing, not denied",
        );
    }

    /// Each database's secret, as the stack names them (`DatabaseCredentialsSecretArn`, a list).
    fn secret(&mut self, function: &str, why: &'static str) {
        if self.plan.databases.iter().all(|db| db.credentials_secret.is_none()) {
            return;
        }
        let secrets = self.secret_arns();
        let d = self.plan.dr_region.clone();
        self.add_each(function, &d, &["secretsmanager:GetSecretValue"], &secrets, why);
    }

    fn secret_arns(&self) -> Vec<String> {
        let listed = self.stack.parameter("DatabaseCredentialsSecretArn");
        listed.split(',').map(str::trim).filter(|arn| !arn.is_empty()).map(str::to_string).collect()
    }

    fn run_reports(&mut self, function: &str, actions: &[&str], why: &'static str) {
        let d = self.plan.dr_region.clone();
        let key = format!("{}{}/doctor/report.json", self.plan.reports.prefix, self.plan.name);
        self.add(function, &d, actions, Self::object(&self.plan.reports.bucket, &key), why);
    }
}

/// The functions the state machines run as Tasks: each loads its run's plan version.
const TASK_FUNCTIONS: &[&str] = &[
    "PreflightFunction",
    "PromoteReplicaFunction",
    "StartStandbyFunction",
    "ScaleAsgFunction",
    "FlipDnsFunction",
    "RetirePrimaryFunction",
    "CreateReplicaFunction",
    "FenceFunction",
    "CustomActionsFunction",
    "FailoverReportFunction",
    "RestoreFindSnapshotFunction",
    "RestoreInstanceFunction",
    "RestoreValidateFunction",
    "RestoreCleanupFunction",
    "RestoreReportFunction",
    "RoundTripFunction",
];

/// The alarm trigger's preparation while confirming: the runbook's own start and raise, marked
/// first, and the undo of a flap (`trigger::prepare`). The tag-key conditions hold for the one key
/// each mark sets; the simulation asks for the call on each resource.
fn prepare_while_confirming(t: &mut Table<'_>, found: &Found) {
    let d = t.plan.dr_region.clone();
    let trigger = "AlarmTriggerFunction";
    t.add(
        trigger,
        &d,
        &["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingGroups"],
        "*".into(),
        "preparing while confirming: the DR compute as it is",
    );
    for (arn, tag) in t.standby_instance_arns(found) {
        t.add_with(
            trigger,
            &d,
            &["ec2:StartInstances", "ec2:StopInstances", "ec2:CreateTags", "ec2:DeleteTags"],
            arn,
            &tag,
            "a standby instance marked and started while confirming, stopped on a flap",
        );
    }
    for asg in &t.plan.auto_scaling {
        let group = found.dr_group_arns.get(&asg.group).cloned().unwrap_or_else(|| {
            format!("arn:aws:autoscaling:{d}:{}:autoScalingGroup:*:autoScalingGroupName/{}", t.account(), asg.group)
        });
        t.add(
            trigger,
            &d,
            &["autoscaling:UpdateAutoScalingGroup", "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
            group,
            "the DR group marked and raised while confirming, given back on a flap",
        );
    }
    t.ecs_services(
        trigger,
        &[
            "ecs:DescribeServices",
            "ecs:UpdateService",
            "ecs:ListTagsForResource",
            "ecs:TagResource",
            "ecs:UntagResource",
        ],
        "an ECS service marked and raised while confirming, given back on a flap",
    );
}

/// The calls of every function of the stack for `plan`, on its resources.
pub fn expected_calls(plan: &Plan, stack: &DeployedStack, found: &Found) -> Vec<ExpectedCall> {
    let mut t = Table { plan, stack, calls: Vec::new() };
    let (p, d) = (plan.primary_region.clone(), plan.dr_region.clone());
    let primary = t.dbs(&p, |db| &db.primary_instance);
    let replica = t.dbs(&d, |db| &db.replica_instance);

    // Every Task of the state machines loads the plan version its run took.
    for function in TASK_FUNCTIONS {
        t.plan_version(function);
    }

    // The failover path, in the order a failover runs it.
    t.plan_check_reads("PreflightFunction");
    t.plan_state("PreflightFunction", &["s3:GetObject"], "the plan's state: who holds it");
    let decision = format!("decisions/{}/doctor.json", plan.name);
    let store = t.store().to_string();
    t.add(
        "PreflightFunction",
        &d,
        &["s3:GetObject", "s3:PutObject"],
        Table::object(&store, &decision),
        "an approval asked and read",
    );
    let answer = format!("answers/{}/doctor/doctor.json", plan.name);
    t.add("PreflightFunction", &d, &["s3:GetObject"], Table::object(&store, &answer), "the deciders' own answers");
    let start = format!("starts/{}/doctor/doctor.json", plan.name);
    t.add("PreflightFunction", &d, &["s3:GetObject"], Table::object(&store, &start), "the starters' own records");
    t.add(
        "PreflightFunction",
        &d,
        &["s3:GetObject"],
        Table::object(&plan.reports.bucket, &readiness_snapshot_key(&plan.name)),
        "the routing pieces as the scheduled readiness check last found them",
    );
    t.secret("PreflightFunction", "the data loss at the incident's start, over SQL");
    t.publish("PreflightFunction", "a decision a human must take");

    t.add_each(
        "PromoteReplicaFunction",
        &d,
        &["rds:DescribeDBInstances", "rds:ListTagsForResource", "rds:PromoteReadReplica", "rds:AddTagsToResource"],
        &replica,
        "promote the replica, keeping the plan's backups",
    );
    t.add_each("PromoteReplicaFunction", &p, &["rds:DescribeDBInstances"], &primary, "the old primary, for the report");
    t.secret("PromoteReplicaFunction", "a planned move's return to writable");

    t.add(
        "StartStandbyFunction",
        &d,
        &["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"],
        "*".into(),
        "the standby instances and their checks",
    );
    for (arn, tag) in t.standby_instance_arns(found) {
        t.add_with("StartStandbyFunction", &d, &["ec2:StartInstances"], arn, &tag, "start a tagged standby instance");
    }
    for key in plan.standby_instances.iter().filter_map(|group| group.ebs_kms_key.as_ref()) {
        let via =
            [("kms:ViaService", format!("ec2.{d}.amazonaws.com")), ("kms:GrantIsForAWSResource", "true".to_string())];
        t.add_with(
            "StartStandbyFunction",
            &d,
            &["kms:CreateGrant"],
            key.clone(),
            &via,
            "EC2 decrypts the standby volumes for the starter",
        );
    }

    t.add(
        "ScaleAsgFunction",
        &d,
        &["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"],
        "*".into(),
        "the DR group's instances",
    );
    for asg in &plan.auto_scaling {
        let group = found.dr_group_arns.get(&asg.group).cloned().unwrap_or_else(|| {
            format!("arn:aws:autoscaling:{d}:{}:autoScalingGroup:*:autoScalingGroupName/{}", t.account(), asg.group)
        });
        t.add(
            "ScaleAsgFunction",
            &d,
            &["autoscaling:UpdateAutoScalingGroup", "autoscaling:DeleteTags"],
            group,
            "raise the DR group to its failover size (after a failback: back to standby, its fence tag dropped)",
        );
    }
    t.ecs_services(
        "ScaleAsgFunction",
        &["ecs:DescribeServices", "ecs:UpdateService"],
        "raise the DR ECS services to their failover count, read their tasks (after a failback: back to standby)",
    );
    // A failback's stand-down: Ireland's standby instances stopped again, only the tagged ones.
    for (arn, tag) in t.standby_instance_arns(found) {
        t.add_with(
            "ScaleAsgFunction",
            &d,
            &["ec2:StopInstances"],
            arn,
            &tag,
            "a failback stops the standby instances again",
        );
    }
    if plan.serving.is_some() {
        t.add(
            "ScaleAsgFunction",
            &d,
            &["elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth"],
            "*".into(),
            "ready means the load balancer's targets are healthy",
        );
    }

    let dns_here = !t.dns_account_role("FlipDnsFunction", "move traffic in the DNS account");
    match (&plan.dns.strategy, &plan.dns.routing) {
        _ if !dns_here => {}
        (DnsStrategy::RoutingHealthCheck, Some(routing)) => {
            let namespace = [("cloudwatch:namespace", routing.namespace.clone())];
            t.add_with(
                "FlipDnsFunction",
                &d,
                &["cloudwatch:PutMetricData"],
                "*".into(),
                &namespace,
                "move traffic: the routing metric",
            );
            let alarm = format!("arn:aws:cloudwatch:{d}:{}:alarm:{}", t.account(), routing.alarm);
            t.add(
                "FlipDnsFunction",
                &d,
                &["cloudwatch:DescribeAlarms"],
                alarm,
                "the routing alarm followed the metric",
            );
            t.add("FlipDnsFunction", &d, &["cloudwatch:GetMetricData"], "*".into(), "the routing metric published");
        }
        _ => {
            let zone = format!("arn:aws:route53:::hostedzone/{}", stack.parameter("HostedZoneId"));
            t.route53_records("FlipDnsFunction", "move traffic: the failover records");
            t.add(
                "FlipDnsFunction",
                "us-east-1",
                &["route53:ChangeResourceRecordSets"],
                zone,
                "move traffic: the failover records",
            );
            t.add("FlipDnsFunction", "us-east-1", &["route53:GetChange"], "*".into(), "the change propagated");
        }
    }

    t.plan_check_reads("FailoverReportFunction");
    t.run_reports("FailoverReportFunction", &["s3:PutObject"], "the run's report");
    t.plan_state("FailoverReportFunction", &["s3:GetObject", "s3:PutObject"], "the plan stays failed over");
    t.publish("FailoverReportFunction", "the run's outcome");
    t.run_metrics("FailoverReportFunction");

    if let Some(fence) = &plan.fence {
        t.add_each("FenceFunction", &p, &["rds:DescribeDBInstances"], &primary, "the writer's endpoint");
        t.add_each("FenceFunction", &d, &["rds:DescribeDBInstances"], &replica, "the replica's endpoint (barrier)");
        t.secret("FenceFunction", "the read-only fence and the barrier, over SQL");
        for group in &fence.auto_scaling_group {
            let arn = found.fence_group_arns.get(group).cloned().unwrap_or_else(|| {
                format!("arn:aws:autoscaling:{p}:{}:autoScalingGroup:*:autoScalingGroupName/{group}", t.account())
            });
            t.add(
                "FenceFunction",
                &p,
                &["autoscaling:DescribeAutoScalingGroups"],
                "*".into(),
                "the primary region's application group",
            );
            t.add(
                "FenceFunction",
                &p,
                &["autoscaling:UpdateAutoScalingGroup", "autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"],
                arn,
                "scale the primary region's application to zero, keep its size (and give it back when the barrier fails)",
            );
        }
        for hook in [&fence.lambda, &fence.barrier_function].into_iter().flatten() {
            let arn = t.function_arn(&d, hook);
            t.add("FenceFunction", &d, &["lambda:InvokeFunction"], arn, "the application's own fence hook");
        }
    }

    // The scheduled checks.
    t.plan_check_reads("ReadinessCheckFunction");
    t.published_plan("ReadinessCheckFunction");
    t.plan_state("ReadinessCheckFunction", &["s3:GetObject"], "the direction the estate stands");
    t.add(
        "ReadinessCheckFunction",
        "us-east-1",
        &["route53:ListHealthChecks", "route53:GetHealthCheck", "route53:ListTagsForResources"],
        "*".into(),
        "the routing and detection health checks",
    );
    t.route53_records("ReadinessCheckFunction", "the failover records, as Route 53 holds them");
    let snapshot = readiness_snapshot_key(&plan.name);
    t.add(
        "ReadinessCheckFunction",
        &d,
        &["s3:GetObject", "s3:PutObject"],
        Table::object(&plan.reports.bucket, &snapshot),
        "the previous readiness, for drift",
    );
    let history = format!("{}doctor.json", readiness_history_prefix(&plan.name));
    t.add(
        "ReadinessCheckFunction",
        &d,
        &["s3:PutObject"],
        Table::object(&plan.reports.bucket, &history),
        "each change, for the posture page's drift",
    );
    let readiness_ns = [("cloudwatch:namespace", "DrOrchestrator/Readiness".to_string())];
    t.add_with(
        "ReadinessCheckFunction",
        &d,
        &["cloudwatch:PutMetricData"],
        "*".into(),
        &readiness_ns,
        "the readiness metrics",
    );
    t.add(
        "ReadinessCheckFunction",
        &d,
        &["ec2:DescribeLaunchTemplateVersions", "ec2:DescribeImages", "ec2:DescribeInstanceTypes"],
        "*".into(),
        "the group's launch template and its AMI in the DR region",
    );
    let quota = format!("arn:aws:servicequotas:{d}:{}:ec2/L-1216C47A", t.account());
    t.add(
        "ReadinessCheckFunction",
        &d,
        &["servicequotas:GetServiceQuota"],
        quota,
        "the vCPU quota against the failover capacity",
    );
    if plan.serving.is_some() {
        t.add(
            "ReadinessCheckFunction",
            &d,
            &[
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeTargetGroups",
            ],
            "*".into(),
            "the DR load balancer and its target group",
        );
        let certificate = format!("arn:aws:acm:{d}:{}:certificate/*", t.account());
        t.add(
            "ReadinessCheckFunction",
            &d,
            &["acm:DescribeCertificate"],
            certificate,
            "the listener certificates' expiry",
        );
    }
    let mut keys: Vec<String> = plan.readiness.iter().flat_map(|r| r.kms_keys.iter().cloned()).collect();
    keys.extend(plan.standby_instances.iter().filter_map(|group| group.ebs_kms_key.clone()));
    keys.extend(found.replica_keys.iter().cloned());
    keys.sort();
    keys.dedup();
    for key in keys {
        let arn = if key.starts_with("arn:") { key } else { format!("arn:aws:kms:{d}:{}:key/{key}", t.account()) };
        t.add("ReadinessCheckFunction", &d, &["kms:DescribeKey"], arn, "a key the DR side decrypts with is enabled");
    }
    if plan.databases.iter().any(|db| db.credentials_secret.is_some()) {
        let secrets = t.secret_arns();
        t.add_each(
            "ReadinessCheckFunction",
            &d,
            &["secretsmanager:DescribeSecret"],
            &secrets,
            "the database secret is in the DR region",
        );
    }
    for probe in plan.readiness.iter().flat_map(|r| r.probes.iter()) {
        let arn = t.function_arn(&probe.region, &probe.function);
        t.add("ReadinessCheckFunction", &probe.region, &["lambda:InvokeFunction"], arn, "a custom readiness probe");
    }
    t.publish("ReadinessCheckFunction", "readiness drift");

    // The plan's custom actions run where the run moves to: Ireland for a failover, Paris for a
    // failback.
    for action in &plan.custom_actions {
        for region in [&d, &p] {
            let arn = t.function_arn(region, &action.function);
            t.add(
                "CustomActionsFunction",
                region,
                &["lambda:InvokeFunction"],
                arn.clone(),
                "a custom action of the plan",
            );
            t.add("ReadinessCheckFunction", region, &["lambda:GetFunction"], arn, "a custom action deployed");
        }
    }

    t.add_each("RpoCheckFunction", &p, &["rds:DescribeDBInstances"], &primary, "the primary of the pair");
    t.add_each("RpoCheckFunction", &d, &["rds:DescribeDBInstances"], &replica, "the replica of the pair");
    t.add("RpoCheckFunction", &d, &["cloudwatch:GetMetricData"], "*".into(), "lag and replication metrics");
    let rpo_ns = [("cloudwatch:namespace", "DrOrchestrator/Rpo".to_string())];
    t.add_with("RpoCheckFunction", &d, &["cloudwatch:PutMetricData"], "*".into(), &rpo_ns, "the RPO metrics");
    t.published_plan("RpoCheckFunction");
    t.plan_state("RpoCheckFunction", &["s3:GetObject"], "which way the pair replicates");
    let rpo_snapshot = rpo_snapshot_key(&plan.name);
    t.add(
        "RpoCheckFunction",
        &d,
        &["s3:GetObject", "s3:PutObject"],
        Table::object(&plan.reports.bucket, &rpo_snapshot),
        "the previous verdicts",
    );
    t.add(
        "RpoCheckFunction",
        &d,
        &["s3:ListBucket"],
        Table::bucket(&plan.reports.bucket),
        "a first run finds no snapshot",
    );
    for pair in &plan.s3_replication {
        let heartbeat = heartbeat_key(&plan.name);
        t.add(
            "RpoCheckFunction",
            &p,
            &["s3:PutObject"],
            Table::object(&pair.source_bucket, &heartbeat),
            "the bucket heartbeat, written in the primary region",
        );
        t.add(
            "RpoCheckFunction",
            &d,
            &["s3:GetObject"],
            Table::object(&pair.replica_bucket, &heartbeat),
            "the heartbeat, read in the DR region",
        );
        t.add(
            "RpoCheckFunction",
            &d,
            &["s3:ListBucket"],
            Table::bucket(&pair.replica_bucket),
            "a heartbeat not replicated yet reads as missing",
        );
    }
    t.secret("RpoCheckFunction", "the database heartbeat, over SQL");
    t.publish("RpoCheckFunction", "an RPO breach");

    // The entry points.
    let failover_machine = t.state_machine("FailoverStateMachine");
    if let Some(trigger) = &plan.trigger {
        t.published_plan("AlarmTriggerFunction");
        t.plan_state("AlarmTriggerFunction", &["s3:GetObject", "s3:PutObject"], "the plan taken for the run");
        for alarm in &trigger.alarms {
            let arn = format!("arn:aws:cloudwatch:us-east-1:{}:alarm:{alarm}", t.account());
            t.add(
                "AlarmTriggerFunction",
                "us-east-1",
                &["cloudwatch:DescribeAlarms"],
                arn,
                "the detection alarm, on schedule",
            );
        }
        let trigger_ns = [("cloudwatch:namespace", "DrOrchestrator/Trigger".to_string())];
        t.add_with(
            "AlarmTriggerFunction",
            &d,
            &["cloudwatch:PutMetricData"],
            "*".into(),
            &trigger_ns,
            "every decision counted",
        );
        t.add(
            "AlarmTriggerFunction",
            &d,
            &["states:StartExecution"],
            failover_machine.clone(),
            "a confirmed outage starts the runbook",
        );
        t.publish("AlarmTriggerFunction", "the run started");
        if trigger.prepare_while_confirming {
            prepare_while_confirming(&mut t, found);
        }
        // As the stack names its fence function (a stand-in stack without one has nothing to ask).
        if let Some(function) = stack.resource("FenceFunction").filter(|_| plan.fences_on_return()) {
            let fence = t.function_arn(&d, function);
            t.add(
                "AlarmTriggerFunction",
                &d,
                &["lambda:InvokeFunction"],
                fence,
                "fence on return: the primary region fenced when it answers again after a failover",
            );
        }
    }
    if plan.fence.as_ref().is_some_and(|fence| fence.reprotect_after_roll_back.unwrap_or(true)) {
        let reprotect_machine = t.state_machine("ReprotectStateMachine");
        t.add(
            "FailoverReportFunction",
            &d,
            &["states:StartExecution"],
            reprotect_machine,
            "a planned move rolled back past its promotion: reprotect at once",
        );
    }
    t.published_plan("GameDayFunction");
    t.plan_state("GameDayFunction", &["s3:GetObject", "s3:PutObject"], "a live drill takes the plan");
    let round_trip_machine = t.state_machine("RoundTripStateMachine");
    for machine in [failover_machine, round_trip_machine] {
        t.add("GameDayFunction", &d, &["states:StartExecution"], machine, "a drill or a round trip");
    }
    t.publish("GameDayFunction", "the game day started");

    t.published_plan("PlanReconcilerFunction");
    t.plan_state("PlanReconcilerFunction", &["s3:GetObject", "s3:PutObject"], "a hold given back, or why it stays");
    t.plan_check_reads("PlanReconcilerFunction");
    let failover_runs =
        format!("{}:doctor", t.state_machine("FailoverStateMachine").replacen(":stateMachine:", ":execution:", 1));
    t.add(
        "PlanReconcilerFunction",
        &d,
        &["states:DescribeExecution", "states:GetExecutionHistory"],
        failover_runs,
        "how the holding run ended, and which steps it entered",
    );
    t.publish("PlanReconcilerFunction", "a hold given back or kept for a human");

    t.plan_check_reads("RoundTripFunction");
    t.run_reports("RoundTripFunction", &["s3:GetObject", "s3:PutObject"], "the legs' reports, the round trip's report");
    t.plan_state("RoundTripFunction", &["s3:GetObject", "s3:PutObject"], "the plan's state between legs");
    t.publish("RoundTripFunction", "the round trip's outcome");
    t.run_metrics("RoundTripFunction");

    // Reprotect, after a failover: Paris becomes the replica.
    t.add_each(
        "RetirePrimaryFunction",
        &p,
        &["rds:DescribeDBInstances", "rds:CreateDBSnapshot", "rds:ModifyDBInstance", "rds:AddTagsToResource"],
        &primary,
        "snapshot and rename the old primary",
    );
    t.add("RetirePrimaryFunction", &p, &["rds:DescribeDBSnapshots"], "*".into(), "the final snapshot available");
    t.add("CreateReplicaFunction", &p, &["cloudwatch:GetMetricData"], "*".into(), "the new replica's lag");
    t.add_each(
        "CreateReplicaFunction",
        &d,
        &["rds:DescribeDBInstances", "rds:CreateDBInstanceReadReplica"],
        &replica,
        "the new primary is the replica's source",
    );
    t.add_each(
        "CreateReplicaFunction",
        &p,
        &["rds:CreateDBInstanceReadReplica", "rds:AddTagsToResource"],
        &primary,
        "the new replica in the primary region, under the old primary's name",
    );

    if plan.restore_test.is_some() {
        let restore_machine = t.state_machine("RestoreTestStateMachine");
        t.published_plan("RestoreTestStartFunction");
        t.add("RestoreTestStartFunction", &d, &["states:StartExecution"], restore_machine, "the monthly restore test");
        t.add("RestoreFindSnapshotFunction", &d, &["rds:DescribeDBSnapshots"], "*".into(), "the newest snapshot copy");
        for function in
            ["RestoreInstanceFunction", "RestoreValidateFunction", "RestoreCleanupFunction", "RestoreJanitorFunction"]
        {
            t.add(function, &d, &["rds:DescribeDBInstances"], "*".into(), "the temporary instance's status");
        }
        let probe = plan.restore_test.as_ref().and_then(|test| test.sql_probe_function.clone());
        let probe = probe.or_else(|| stack.resource("RestoreSqlProbeFunction").map(str::to_string));
        if let Some(probe) = probe {
            let arn = t.function_arn(&d, &probe);
            t.add(
                "RestoreValidateFunction",
                &d,
                &["lambda:InvokeFunction"],
                arn,
                "the SQL probe of the restored instance",
            );
        }
        t.publish("RestoreReportFunction", "the restore test's outcome");
        t.run_metrics("RestoreReportFunction");
        let test_instance = t.db(&d, &format!("{INSTANCE_PREFIX}doctor"));
        let request_tag = [(format!("aws:RequestTag/{RESTORE_TEST_TAG}"), "true".to_string())];
        t.add(
            "RestoreInstanceFunction",
            &d,
            &["rds:RestoreDBInstanceFromDBSnapshot"],
            test_instance.clone(),
            "the temporary instance",
        );
        t.add_with(
            "RestoreInstanceFunction",
            &d,
            &["rds:AddTagsToResource"],
            test_instance.clone(),
            &request_tag,
            "tagged as a restore test",
        );
        let resource_tag = [(format!("rds:db-tag/{RESTORE_TEST_TAG}"), "true".to_string())];
        for function in ["RestoreCleanupFunction", "RestoreJanitorFunction"] {
            t.add_with(
                function,
                &d,
                &["rds:DeleteDBInstance"],
                test_instance.clone(),
                &resource_tag,
                "only a restore-test instance is deleted",
            );
        }
        let key = format!("{}{}/restore-tests/doctor/report.json", plan.reports.prefix, plan.name);
        t.add(
            "RestoreReportFunction",
            &d,
            &["s3:PutObject"],
            Table::object(&plan.reports.bucket, &key),
            "the restore test's report",
        );
    }
    t.calls
}

/// Every action each function's rows name, whatever options a plan takes (a load balancer,
/// probes, keys, either DNS strategy, credentials, custom actions): what `scripts/iam_report.py` holds every
/// action the suite's functions were authorized for against, so that doctor simulates each call
/// the enforcement ever allowed.
pub fn actions_by_function(plan: &Plan) -> BTreeMap<String, BTreeSet<String>> {
    let mut every = plan.clone();
    every.serving = Some(crate::plan::Serving {
        load_balancer: "load-balancer".into(),
        target_group: "target-group".into(),
        certificate_margin_days: 30,
    });
    every.readiness = Some(crate::plan::ReadinessNeeds {
        kms_keys: vec!["key".into()],
        probes: vec![crate::plan::ReadinessProbe {
            name: "probe".into(),
            function: format!("{}probe", crate::plan::READINESS_PROBE_PREFIX),
            region: plan.dr_region.clone(),
        }],
    });
    for group in &mut every.standby_instances {
        group.ebs_kms_key = Some("arn:aws:kms:eu-west-1:123456789012:key/key".into());
    }
    every.custom_actions = vec![crate::plan::CustomAction {
        name: "action".into(),
        function: format!("{}action", crate::plan::CUSTOM_ACTION_PREFIX),
        point: crate::plan::ActionPoint::AfterDataTier,
        timeout_seconds: 60,
    }];
    every.ecs_services = vec![crate::plan::EcsService {
        cluster: "cluster".into(),
        service: "service".into(),
        failover_count: 2,
        standby_count: 0,
        minimum_healthy: 1,
    }];
    if let Some(fence) = every.fence.as_mut() {
        fence.lambda = Some("fence-hook".into());
        fence.barrier_function = Some("barrier-hook".into());
        if fence.auto_scaling_group.is_empty() {
            fence.auto_scaling_group = vec!["application-group".into()];
        }
    }
    let mut stack = DeployedStack::default();
    stack.parameters.insert("DatabaseCredentialsSecretArn".into(), "arn:aws:secretsmanager:::secret:s".into());
    stack.outputs.insert("NotificationTopicArn".into(), "arn:aws:sns:::topic".into());
    stack.resources.insert("RestoreSqlProbeFunction".into(), "restore-sql-probe".into());
    let mut upsert = every.clone();
    upsert.dns.strategy = DnsStrategy::RecordUpsert;
    let mut elsewhere = every.clone();
    elsewhere.accounts.dns =
        Some(crate::plan::MemberAccount { account: "222233334444".into(), role: "dr-orchestrator-member".into() });
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for variant in [every, upsert, elsewhere] {
        for call in expected_calls(&variant, &stack, &Found::default()) {
            out.entry(call.function).or_default().insert(call.action);
        }
    }
    out
}
