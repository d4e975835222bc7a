//! The plan document: the shipped example is valid, and each broken rule has its named error.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::path::PathBuf;

use dr_core::plan::{Direction, DnsStrategy, InstanceSelector, MemberAccount, Plan, ProblemCode};
use dr_core::{DrError, aws::AwsClients};

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/paris-ireland.toml")
}

fn example() -> Plan {
    Plan::load(&example_path()).expect("the shipped example plan is valid")
}

/// The codes of every problem of `plan`, in report order.
fn codes(plan: &Plan) -> Vec<ProblemCode> {
    plan.problems().iter().map(|p| p.code).collect()
}

#[test]
fn the_microservices_example_plan_describes_the_us_estate_on_ecs() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/us-east-west-microservices.toml");
    let plan = Plan::load(&path).expect("the microservices example plan is valid");
    assert_eq!((plan.primary_name(), plan.dr_name()), ("N. Virginia", "Oregon"));
    assert_eq!((plan.primary_region.as_str(), plan.dr_region.as_str()), ("us-east-1", "us-west-2"));
    assert_eq!((plan.auto_scaling.is_empty(), plan.standby_instances.is_empty()), (true, true));
    assert_eq!((plan.ecs_services.len(), plan.s3_replication.len(), plan.custom_actions.len()), (15, 4, 2));
    let tasks: u32 = plan.ecs_services.iter().map(|s| u32::from(s.failover_count)).sum();
    assert!(plan.ecs_services.iter().all(|s| (10..=50).contains(&s.failover_count)), "10-50 tasks each");
    assert_eq!(tasks, 290);
    assert!(plan.problems().is_empty());
}

#[test]
fn the_example_plan_describes_the_paris_ireland_tier1_estate() {
    let plan = example();
    assert_eq!(plan.name, "paris-ireland-prod");
    assert_eq!((plan.primary_region.as_str(), plan.dr_region.as_str()), ("eu-west-3", "eu-west-1"));
    assert_eq!(plan.tier, 1);
    assert_eq!(plan.targets.rto().as_secs(), 4 * 3600);
    assert_eq!(plan.targets.rpo().as_secs(), 3600);
    assert_eq!(plan.dns.records[0].ttl_seconds, 60);
    assert_eq!((dr_group(&plan).failover.min, dr_group(&plan).failover.max), (2, 6));
    assert_eq!((plan.primary_name(), plan.dr_name()), ("Paris", "Ireland"));
    assert_eq!(plan.dns.strategy, DnsStrategy::RoutingHealthCheck, "the production default: the runbook moves traffic");
    assert!(
        plan.trigger.as_ref().is_some_and(|t| plan
            .dns
            .routing
            .as_ref()
            .is_some_and(|r| r.health_check != t.detection_health_check))
    );
    assert!(plan.problems().is_empty());
}

#[test]
fn each_broken_rule_has_its_named_problem() {
    type Breakage = fn(&mut Plan);
    let cases: Vec<(Breakage, ProblemCode, &str)> = vec![
        (|p| p.primary_region = "eu-west-9".into(), ProblemCode::UnknownRegion, "primary_region"),
        (|p| p.dr_region = "eu-west-3".into(), ProblemCode::ReplicaInPrimaryRegion, "dr_region"),
        (
            |p| {
                p.region_names.insert("eu-west-2".into(), "London".into());
            },
            ProblemCode::UnknownRegion,
            "region_names.\"eu-west-2\"",
        ),
        (
            |p| {
                p.region_names.insert("eu-west-1".into(), String::new());
            },
            ProblemCode::InvalidIdentifier,
            "region_names.\"eu-west-1\"",
        ),
        (
            |p| {
                p.region_names.insert("eu-west-1".into(), "Ireland and the rest of the world too".into());
            },
            ProblemCode::InvalidIdentifier,
            "region_names.\"eu-west-1\"",
        ),
        (
            |p| {
                p.region_names.insert("eu-west-1".into(), "Ireland | Dublin".into());
            },
            ProblemCode::InvalidIdentifier,
            "region_names.\"eu-west-1\"",
        ),
        (
            |p| {
                p.region_names.insert("eu-west-1".into(), "paris".into());
            },
            ProblemCode::InvalidIdentifier,
            "region_names.\"eu-west-1\"",
        ),
        (
            // Unnamed, a region is called by its code: a name may not be the other region's code.
            |p| {
                p.region_names.remove("eu-west-3");
                p.region_names.insert("eu-west-1".into(), "eu-west-3".into());
            },
            ProblemCode::InvalidIdentifier,
            "region_names.\"eu-west-1\"",
        ),
        (|p| dr_group_mut(p).failover.desired = 7, ProblemCode::DesiredOutsideMinMax, "auto_scaling.failover.desired"),
        (|p| dr_group_mut(p).failover.min = 9, ProblemCode::CapacityMinAboveMax, "auto_scaling.failover.min"),
        (
            |p| {
                dr_group_mut(p).failover = dr_core::plan::Capacity { min: 0, desired: 0, max: 6 };
                dr_group_mut(p).minimum_healthy = 0;
            },
            ProblemCode::FailoverCapacityZero,
            "auto_scaling.failover.desired",
        ),
        (|p| dr_group_mut(p).minimum_healthy = 3, ProblemCode::InvalidMinimumHealthy, "auto_scaling.minimum_healthy"),
        (
            |p| p.standby_instances[0].minimum_healthy = 3,
            ProblemCode::InvalidMinimumHealthy,
            "standby_instances.minimum_healthy",
        ),
        (
            |p| {
                dr_group_mut(p).minimum_healthy = 0;
                p.standby_instances[0].minimum_healthy = 0;
            },
            ProblemCode::InvalidMinimumHealthy,
            "auto_scaling.minimum_healthy",
        ),
        (|p| p.dns.records[0].ttl_seconds = 300, ProblemCode::TtlTooHighForTier, "dns.ttl_seconds"),
        (
            |p| {
                p.network = Some(dr_core::plan::Network {
                    database_subnets: vec!["subnet-0a1b2c3d".into()],
                    database_security_groups: vec!["sg-0a1b2c3d".into()],
                    primary_region_egress: dr_core::plan::Egress::EndpointsOnly,
                })
            },
            ProblemCode::NoRouteToPrimaryRegion,
            "network.primary_region_egress",
        ),
        (
            |p| {
                p.serving = Some(dr_core::plan::Serving {
                    load_balancer: "platform-alb-ireland".into(),
                    target_group: " ".into(),
                    certificate_margin_days: 30,
                })
            },
            ProblemCode::InvalidServing,
            "serving.target_group",
        ),
        (
            |p| {
                p.readiness = Some(dr_core::plan::ReadinessNeeds {
                    kms_keys: Vec::new(),
                    probes: vec![dr_core::plan::ReadinessProbe {
                        name: "transit-gateway".into(),
                        function: "arn:aws:lambda:eu-west-1:123456789012:function:tgw-check".into(),
                        region: "eu-west-1".into(),
                    }],
                })
            },
            ProblemCode::InvalidReadinessProbe,
            "readiness.probes[0].function",
        ),
        (
            |p| p.custom_actions = vec![custom_action("redis", "redis-failover", 600)],
            ProblemCode::InvalidCustomAction,
            "custom_actions[0].function",
        ),
        (
            // Tier 1's RTO of 4 h: each point may take 30 min.
            |p| p.custom_actions = vec![custom_action("redis", "dr-custom-action-redis", 1801)],
            ProblemCode::InvalidCustomAction,
            "custom_actions[0].timeout_seconds",
        ),
        (
            |p| {
                p.custom_actions = vec![
                    custom_action("redis", "dr-custom-action-redis", 600),
                    custom_action("redis", "dr-custom-action-efs", 600),
                ]
            },
            ProblemCode::InvalidCustomAction,
            "custom_actions[1].name",
        ),
        (
            |p| p.ecs_services = vec![ecs_service("platform", "orders", 0, 0, 1)],
            ProblemCode::InvalidEcsService,
            "ecs_services[0].failover_count",
        ),
        (
            |p| p.ecs_services = vec![ecs_service("platform", "orders", 4, 6, 2)],
            ProblemCode::InvalidEcsService,
            "ecs_services[0].standby_count",
        ),
        (
            |p| p.ecs_services = vec![ecs_service("platform", "orders", 4, 0, 5)],
            ProblemCode::InvalidEcsService,
            "ecs_services[0].minimum_healthy",
        ),
        (
            |p| p.ecs_services = vec![ecs_service("platform", "orders/v2", 4, 0, 2)],
            ProblemCode::InvalidEcsService,
            "ecs_services[0].service",
        ),
        (
            |p| {
                p.ecs_services =
                    vec![ecs_service("platform", "orders", 4, 0, 2), ecs_service("platform", "orders", 8, 0, 2)]
            },
            ProblemCode::InvalidEcsService,
            "ecs_services[1].service",
        ),
        (
            |p| p.ecs_services = (0..51).map(|i| ecs_service("platform", &format!("service-{i}"), 2, 0, 1)).collect(),
            ProblemCode::InvalidEcsService,
            "ecs_services",
        ),
        (
            |p| {
                p.network = Some(dr_core::plan::Network {
                    database_subnets: vec![],
                    database_security_groups: vec!["sg-0a1b2c3d".into()],
                    primary_region_egress: dr_core::plan::Egress::Nat,
                })
            },
            ProblemCode::InvalidNetwork,
            "network.database_subnets",
        ),
        (
            // Required instances, none selected (an absent [standby_instances] is no instances).
            |p| p.standby_instances = vec![InstanceSelector { minimum_healthy: 1, ..InstanceSelector::default() }],
            ProblemCode::EmptyInstanceSelector,
            "standby_instances",
        ),
        (
            |p| p.standby_instances = vec![InstanceSelector { ids: Some(vec![]), ..InstanceSelector::default() }],
            ProblemCode::EmptyInstanceSelector,
            "standby_instances.ids",
        ),
        (
            |p| {
                p.standby_instances[0].tag = None;
                p.standby_instances[0].ids = Some(vec!["i-0abc".into()]);
            },
            ProblemCode::AmbiguousInstanceSelector,
            "standby_instances.count",
        ),
        (|p| p.standby_instances[0].count = None, ProblemCode::MissingStandbyCount, "standby_instances.count"),
        (|p| p.standby_instances[0].count = Some(0), ProblemCode::MissingStandbyCount, "standby_instances.count"),
        (|p| p.standby_instances[0].count = Some(51), ProblemCode::TooManyStandbyInstances, "standby_instances"),
        // Several failover records: each name and type once, at least one.
        (
            |p| {
                let again = p.dns.records[0].clone();
                p.dns.records.push(again);
            },
            ProblemCode::InvalidDnsRecord,
            "dns.records[1].record",
        ),
        (|p| p.dns.records.clear(), ProblemCode::InvalidDnsRecord, "dns.records"),
        (
            |p| {
                let mut www = p.dns.records[0].clone();
                www.record = "www.elsewhere.example.org.".into();
                p.dns.records.push(www);
            },
            ProblemCode::RecordOutsideZone,
            "dns.records[1].record",
        ),
        (
            |p| p.standby_instances[0].ebs_kms_key = Some("alias/standby".into()),
            ProblemCode::InvalidIdentifier,
            "standby_instances.ebs_kms_key",
        ),
        (
            |p| p.standby_instances[0].ids = Some(vec!["i-0abc".into()]),
            ProblemCode::AmbiguousInstanceSelector,
            "standby_instances",
        ),
        (|p| p.tier = 4, ProblemCode::UnknownTier, "tier"),
        (|p| p.name = "paris ireland!".into(), ProblemCode::InvalidPlanName, "name"),
        (|p| p.targets.rto_minutes = 0, ProblemCode::InvalidTarget, "targets.rto_minutes"),
        (|p| p.targets.rpo_minutes = 300, ProblemCode::TargetExceedsTier, "targets.rpo_minutes"),
        (
            |p| p.databases[0].replica_instance = "1-bad".into(),
            ProblemCode::InvalidIdentifier,
            "database.replica_instance",
        ),
        (
            |p| p.databases[0].lag_freshness_seconds = 7200,
            ProblemCode::InvalidFreshnessWindow,
            "database.lag_freshness_seconds",
        ),
        (
            |p| p.databases[0].backup_retention_days = 0,
            ProblemCode::BackupRetentionOutOfRange,
            "database.backup_retention_days",
        ),
        (
            |p| p.databases[0].backup_retention_days = 36,
            ProblemCode::BackupRetentionOutOfRange,
            "database.backup_retention_days",
        ),
        (
            |p| p.databases[0].backup_retention_days = 14,
            ProblemCode::BackupRetentionBelowTier,
            "database.backup_retention_days",
        ),
        (
            |p| p.databases[0].backup_window = "1:00-1:30".into(),
            ProblemCode::InvalidBackupWindow,
            "database.backup_window",
        ),
        (
            |p| p.databases[0].backup_window = "01:00-01:15".into(),
            ProblemCode::InvalidBackupWindow,
            "database.backup_window",
        ),
        (
            |p| p.databases[0].backup_window = "25:00-01:00".into(),
            ProblemCode::InvalidBackupWindow,
            "database.backup_window",
        ),
        (|p| p.dns.records[0].record = "app.elsewhere.com.".into(), ProblemCode::RecordOutsideZone, "dns.record"),
        (|p| p.dns.records[0].record_type = "MX".into(), ProblemCode::UnsupportedRecordType, "dns.record_type"),
        (
            |p| p.dns.records[0].secondary.value = p.dns.records[0].primary.value.clone(),
            ProblemCode::SameDnsTarget,
            "dns.secondary.value",
        ),
        (
            |p| p.dns.records[0].secondary.set_identifier = p.dns.records[0].primary.set_identifier.clone(),
            ProblemCode::DuplicateSetIdentifier,
            "dns.secondary.set_identifier",
        ),
        (|p| p.dns.routing = None, ProblemCode::MissingRouting, "dns.routing"),
        (|p| p.dns.strategy = DnsStrategy::RecordUpsert, ProblemCode::UnusedRouting, "dns.routing"),
        (
            |p| {
                let detection = p.trigger.as_ref().expect("example has a trigger").detection_health_check.clone();
                p.dns.routing.as_mut().expect("example routes").health_check = detection;
            },
            ProblemCode::DetectionCheckOnRecord,
            "dns.routing.health_check",
        ),
        (
            |p| p.dns.routing.as_mut().expect("example routes").namespace = "AWS/Route53".into(),
            ProblemCode::InvalidIdentifier,
            "dns.routing.namespace",
        ),
        (
            |p| p.s3_replication[0].replica_bucket = p.s3_replication[0].source_bucket.clone(),
            ProblemCode::BucketPairSameBucket,
            "s3_replication[0]",
        ),
        (|p| p.s3_replication.push(p.s3_replication[0].clone()), ProblemCode::DuplicateBucketPair, "s3_replication[1]"),
        (|p| p.reports.bucket = "Reports_Bucket".into(), ProblemCode::InvalidIdentifier, "reports.bucket"),
        (
            |p| p.restore_test.as_mut().expect("example has a restore test").instance_class = "m6i".into(),
            ProblemCode::InvalidRestoreTest,
            "restore_test.instance_class",
        ),
        (
            |p| p.restore_test.as_mut().expect("example has a restore test").expiry_hours = 0,
            ProblemCode::InvalidRestoreTest,
            "restore_test.expiry_hours",
        ),
        (
            // The janitor would delete the instance of a test still within its 4 h RTO.
            |p| p.restore_test.as_mut().expect("example has a restore test").expiry_hours = 5,
            ProblemCode::InvalidRestoreTest,
            "restore_test.expiry_hours",
        ),
        (
            |p| p.s3_replication[0].replication_rule = None,
            ProblemCode::MissingReplicationRule,
            "s3_replication[0].replication_rule",
        ),
        (
            |p| p.trigger.as_mut().expect("example has a trigger").alarms.clear(),
            ProblemCode::MissingTriggerAlarm,
            "trigger.alarms",
        ),
        (
            |p| p.trigger.as_mut().expect("example has a trigger").confirmation_window_seconds = 30,
            ProblemCode::InvalidConfirmationWindow,
            "trigger.confirmation_window_seconds",
        ),
        (
            |p| p.trigger.as_mut().expect("example has a trigger").confirmation_window_seconds = 1200,
            ProblemCode::InvalidConfirmationWindow,
            "trigger.confirmation_window_seconds",
        ),
        (
            |p| p.trigger.as_mut().expect("example has a trigger").probe_url = Some("paris.example.com".into()),
            ProblemCode::InvalidProbeUrl,
            "trigger.probe_url",
        ),
        (
            |p| {
                p.trigger.as_mut().expect("example has a trigger").probe_url =
                    Some("https://app.platform.example.com/health".into())
            },
            ProblemCode::InvalidProbeUrl,
            "trigger.probe_url",
        ),
        (
            |p| {
                if let Some(fence) = p.fence.as_mut() {
                    fence.auto_scaling_group.clear();
                    fence.database_read_only = false;
                }
            },
            ProblemCode::FenceWithoutMethod,
            "fence",
        ),
        (
            |p| p.databases[0].credentials_secret = None,
            ProblemCode::FenceWithoutCredentials,
            "database.credentials_secret",
        ),
        (
            |p| {
                if let Some(fence) = p.fence.as_mut() {
                    fence.barrier_timeout_seconds = 1801;
                }
            },
            ProblemCode::InvalidBarrierTimeout,
            "fence.barrier_timeout_seconds",
        ),
        (
            |p| p.accounts.dns = Some(MemberAccount { account: "2222-3333-4444".into(), role: "dr-member".into() }),
            ProblemCode::InvalidAccount,
            "accounts.dns.account",
        ),
        (
            |p| {
                p.accounts.dns = Some(MemberAccount {
                    account: "222233334444".into(),
                    role: "arn:aws:iam::222233334444:role/dr-member".into(),
                })
            },
            ProblemCode::InvalidAccount,
            "accounts.dns.role",
        ),
    ];
    for (break_it, expected, field) in cases {
        let mut plan = example();
        break_it(&mut plan);
        let problems = plan.problems();
        assert_eq!(problems.len(), 1, "{expected:?}: exactly one problem expected, got {problems:#?}");
        assert_eq!((problems[0].code, problems[0].field.as_str()), (expected, field), "{problems:#?}");
        let err = plan.validate().expect_err("an invalid plan is refused");
        assert_eq!(err.name(), "InvalidPlan");
    }
}

#[test]
fn a_backup_window_may_span_midnight_and_lower_tiers_keep_a_week() {
    let mut plan = example();
    plan.databases[0].backup_window = "23:45-00:15".into();
    assert_eq!(codes(&plan), []);
    plan.tier = 2;
    plan.databases[0].backup_retention_days = 7;
    assert_eq!(codes(&plan), []);
    plan.databases[0].backup_retention_days = 6;
    assert_eq!(codes(&plan), [ProblemCode::BackupRetentionBelowTier]);
}

#[test]
fn several_problems_are_reported_together() {
    let mut plan = example();
    plan.dr_region = plan.primary_region.clone();
    plan.dns.records[0].ttl_seconds = 120;
    dr_group_mut(&mut plan).failover.desired = 10;
    plan.standby_instances = vec![InstanceSelector { minimum_healthy: 1, ..InstanceSelector::default() }];
    assert_eq!(
        codes(&plan),
        vec![
            ProblemCode::ReplicaInPrimaryRegion,
            ProblemCode::EmptyInstanceSelector,
            ProblemCode::DesiredOutsideMinMax,
            ProblemCode::TtlTooHighForTier,
        ]
    );
    let message = plan.validate().expect_err("invalid").to_string();
    for name in ["ReplicaInPrimaryRegion", "EmptyInstanceSelector", "DesiredOutsideMinMax", "TtlTooHighForTier"] {
        assert!(message.contains(name), "{name} missing from {message}");
    }
}

#[test]
fn a_tier2_plan_may_keep_a_longer_ttl() {
    let mut plan = example();
    plan.tier = 2;
    plan.dns.records[0].ttl_seconds = 300;
    assert!(plan.problems().is_empty(), "{:#?}", plan.problems());
}

#[test]
fn unknown_fields_and_missing_sections_are_parse_errors() {
    let text = std::fs::read_to_string(example_path()).expect("example readable");
    let typo = text.replace("ttl_seconds = 60", "tll_seconds = 60");
    let err = Plan::parse(&typo, "typo.toml").expect_err("unknown field refused");
    assert_eq!(err.name(), "PlanParseError");
    assert!(err.to_string().contains("tll_seconds"), "{err}");

    let without_dns = text.split("[dns]").next().unwrap_or_default().to_string();
    let err = Plan::parse(&without_dns, "short.toml").expect_err("missing section refused");
    assert_eq!(err.name(), "PlanParseError");
}

#[test]
fn a_missing_plan_file_is_named() {
    let err = Plan::load(&PathBuf::from("plans/does-not-exist.toml")).expect_err("no such file");
    assert!(matches!(err, DrError::PlanNotFound { .. }));
    assert_eq!(err.name(), "PlanNotFound");
}

#[test]
fn endpoint_override_reaches_every_client() {
    let shared = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:5999")
        .build();
    let clients = AwsClients::from_config(&shared, "eu-west-3", "eu-west-1");
    assert_eq!(clients.endpoint_url(), Some("http://127.0.0.1:5999"));
    assert_eq!(clients.primary.s3.config().region().map(|r| r.as_ref()), Some("eu-west-3"));
    assert_eq!(clients.dr.rds.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
    assert_eq!(clients.route53.config().region().map(|r| r.as_ref()), Some("us-east-1"));
}

#[test]
fn a_failback_sees_the_plan_reversed_and_keeps_what_lives_in_one_place() {
    let plan = example();
    let back = plan.facing(Direction::ToPrimary).expect("a failback of the example");
    assert!(back.reversed);
    assert_eq!((back.primary_region.as_str(), back.dr_region.as_str()), ("eu-west-1", "eu-west-3"));
    assert_eq!(back.databases[0].primary_instance, plan.databases[0].replica_instance);
    assert_eq!(back.databases[0].replica_instance, plan.databases[0].primary_instance);
    // Paris's application group is the one given back; Ireland's the one fenced.
    let paris_group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned());
    assert_eq!(Some(dr_group(&back).group.clone()), paris_group);
    assert_eq!(dr_group(&back).failover, dr_group(&plan).failover);
    assert_eq!(
        back.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()),
        Some(dr_group(&plan).group.clone())
    );
    // Paris keeps no standby instances; no trigger, restore test or bucket pair moves back.
    assert!(!back.has_standby_instances());
    assert!(back.trigger.is_none() && back.restore_test.is_none() && back.s3_replication.is_empty());
    // The record, the secret and the reports stay; traffic moves to Paris's value.
    assert_eq!(back.dns, plan.dns);
    assert_eq!(back.databases[0].credentials_secret, plan.databases[0].credentials_secret);
    assert_eq!(back.reports, plan.reports);
    assert_eq!(back.target_after_move(&back.dns.records[0]), &plan.dns.records[0].primary);
    assert_eq!(back.serving_target(&back.dns.records[0]), &plan.dns.records[0].secondary);
    assert_eq!(back.move_direction(), Direction::ToPrimary);
    // Facing twice, or facing a failover, changes nothing.
    assert_eq!(back.facing(Direction::ToPrimary).expect("already reversed"), back);
    assert_eq!(plan.facing(Direction::ToDr).expect("as written"), plan);
    assert!(back.validate().is_ok(), "derived from a validated plan");

    // Without a fenced Paris group there is nothing to give back: named before any call.
    let mut unfenced = plan.clone();
    if let Some(fence) = unfenced.fence.as_mut() {
        fence.auto_scaling_group.clear();
    }
    assert_eq!(unfenced.facing(Direction::ToPrimary).expect_err("no Paris group").name(), "FenceFailed");
    unfenced.fence = None;
    assert_eq!(unfenced.facing(Direction::ToPrimary).expect_err("no fence").name(), "FenceFailed");
}

#[test]
fn region_names_follow_their_codes_and_a_region_without_one_is_called_by_its_code() {
    let plan = example();
    let back = plan.facing(Direction::ToPrimary).expect("a failback of the example");
    assert_eq!((back.primary_name(), back.dr_name()), ("Ireland", "Paris"), "the failback leaves Ireland for Paris");
    // Published and loaded back, the names are the plan's.
    let published = plan.published_text().expect("text");
    assert_eq!(Plan::parse(&published, "published").expect("parses"), plan, "{published}");

    let mut unnamed = plan.clone();
    unnamed.region_names.clear();
    assert!(unnamed.problems().is_empty(), "{:#?}", unnamed.problems());
    assert_eq!((unnamed.primary_name(), unnamed.dr_name()), ("eu-west-3", "eu-west-1"));
    assert_eq!(unnamed.region_name("us-east-1"), "us-east-1");
    // A plan without names keeps the version it had before names existed: nothing is written.
    assert!(!unnamed.published_text().expect("text").contains("region_names"));
    assert_ne!(unnamed.version().expect("version"), plan.version().expect("version"));

    let mut virginia = plan;
    virginia.region_names.insert("eu-west-3".into(), "US East (N. Virginia)".into());
    assert!(virginia.problems().is_empty(), "{:#?}", virginia.problems());
}

#[test]
fn a_failback_is_a_planned_move() {
    use dr_core::run::{FailoverKind, RunInfo, RunbookState};
    let mut run = RunInfo::new("fb-1", dr_core::time::now(), "test");
    run.direction = Direction::ToPrimary;
    let unplanned = RunbookState::new(example(), run.clone());
    assert_eq!(unplanned.validate().expect_err("unplanned failback").name(), "InvalidInput");
    run.kind = FailoverKind::Planned;
    let planned = RunbookState::new(example(), run);
    assert!(planned.facing().expect("faced").plan.reversed);
}

#[test]
fn a_plan_without_its_minimum_healthy_capacity_is_refused_by_name() {
    // Only the service's owner knows how little may serve: no default.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans/paris-ireland.toml"))
        .expect("example plan");
    let without: String = text.lines().filter(|l| !l.starts_with("minimum_healthy")).collect::<Vec<_>>().join("\n");
    let err = Plan::parse(&without, "without").expect_err("refused");
    assert_eq!(err.name(), "PlanParseError");
    assert!(err.to_string().contains("minimum_healthy"), "{err}");
}

fn custom_action(name: &str, function: &str, timeout_seconds: u32) -> dr_core::plan::CustomAction {
    dr_core::plan::CustomAction {
        name: name.into(),
        function: function.into(),
        point: dr_core::plan::ActionPoint::AfterDataTier,
        timeout_seconds,
    }
}

fn ecs_service(cluster: &str, service: &str, failover: u16, standby: u16, minimum: u16) -> dr_core::plan::EcsService {
    dr_core::plan::EcsService {
        cluster: cluster.into(),
        service: service.into(),
        failover_count: failover,
        standby_count: standby,
        minimum_healthy: minimum,
    }
}

fn dr_group(plan: &Plan) -> &dr_core::plan::AutoScaling {
    plan.auto_scaling.first().expect("the example plan has an Auto Scaling group")
}

fn dr_group_mut(plan: &mut Plan) -> &mut dr_core::plan::AutoScaling {
    plan.auto_scaling.first_mut().expect("the example plan has an Auto Scaling group")
}

#[test]
fn an_estate_on_ecs_alone_needs_no_group_and_no_standby_instances_but_something_must_serve() {
    let mut plan = example();
    plan.auto_scaling.clear();
    plan.standby_instances.clear();
    if let Some(fence) = plan.fence.as_mut() {
        fence.auto_scaling_group.clear();
    }
    let problems = plan.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!((problems[0].code, problems[0].field.as_str()), (ProblemCode::InvalidMinimumHealthy, "auto_scaling"));

    plan.ecs_services = vec![ecs_service("platform", "orders", 4, 0, 2)];
    assert_eq!(plan.problems(), Vec::new());
    // Written without the sections, read back the same.
    let text = plan.published_text().expect("text");
    assert!(!text.contains("[auto_scaling") && !text.contains("[standby_instances"), "{text}");
    assert_eq!(Plan::parse(&text, "ecs").expect("parsed"), plan);
    // A failback has no group to give back: the fence is the database's.
    let back = plan.facing(Direction::ToPrimary).expect("a failback");
    assert_eq!((back.auto_scaling.len(), back.ecs_services.len()), (0, 0));
    assert_eq!(back.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()), None);

    // A fence group is given back at the DR group's size: without a DR group, it is refused.
    if let Some(fence) = plan.fence.as_mut() {
        fence.auto_scaling_group = vec!["web-paris".into()];
    }
    assert_eq!(codes(&plan), [ProblemCode::FenceWithoutMethod]);
}

#[test]
fn a_plan_with_its_dns_in_another_account_reads_back_and_an_unknown_section_is_named() {
    let text = std::fs::read_to_string(example_path()).expect("the example plan");
    let with_dns = format!("{text}\n[accounts]\ndns = {{ account = \"222233334444\", role = \"dr-member\" }}\n");
    let plan = Plan::parse(&with_dns, "dns.toml").expect("[accounts.dns] reads");
    let role_arn = plan.accounts.dns.as_ref().map(MemberAccount::role_arn);
    assert_eq!(role_arn.as_deref(), Some("arn:aws:iam::222233334444:role/dr-member"));
    assert_eq!(codes(&plan), []);
    let again = Plan::parse(&plan.published_text().expect("published"), "again.toml").expect("reads back");
    assert_eq!(again.accounts, plan.accounts);
    let workload = format!("{text}\n[accounts]\nworkload = {{ account = \"555566667777\", role = \"dr-member\" }}\n");
    let err = Plan::parse(&workload, "workload.toml").expect_err("not a section of [accounts] yet");
    assert_eq!(err.name(), "PlanParseError");
    assert!(err.to_string().contains("workload") && err.to_string().contains("dns"), "{err}");
}
