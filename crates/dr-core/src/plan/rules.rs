//! The plan's rules: [`Plan::problems`] lists every broken one with its stable [`ProblemCode`].

use super::{DnsStrategy, HOOK_CALLER_TIMEOUT_SECONDS, MAX_HOOK_TIMEOUT_SECONDS, Plan, Targets, Trigger, fqdn};
use crate::error::{PlanProblem, ProblemCode};

/// Regions a plan may name (commercial partition).
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// The longest name `[region_names]` may give a region: it titles report lines and table cells.
const MAX_REGION_NAME_CHARS: usize = 32;

/// A region's name as reports, notices and the staging drill's shell lines can carry it: a letter
/// first, then letters, digits, spaces, `-`, `.`, `(` or `)` (e.g. "Paris", "US East (N. Virginia)"),
/// at most [`MAX_REGION_NAME_CHARS`], no space at either end. ASCII: it is also turned into
/// environment variable and file names (`doctor::staging`).
fn is_region_name(name: &str) -> bool {
    name.len() <= MAX_REGION_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.trim_end() == name
        && name.chars().all(|c| c.is_ascii_alphanumeric() || " -.()".contains(c))
}

/// The longest RTO any tier allows (tier 3): the state machines' execution history must hold a
/// run this long (`tests/contract.rs`).
pub const LONGEST_RTO_MINUTES: u32 = 24 * 60;

/// Maximum RTO and RPO, in minutes, that each tier allows.
fn tier_limits(tier: u8) -> Option<(u32, u32)> {
    match tier {
        1 => Some((4 * 60, 60)),
        2 => Some((8 * 60, 4 * 60)),
        3 => Some((LONGEST_RTO_MINUTES, 24 * 60)),
        _ => None,
    }
}

/// The most standby instances a plan may name: each restart of a fallen-back instance is a turn
/// of the compute loop, and the execution history must hold them all (`tests/contract.rs`).
pub const MAX_STANDBY_INSTANCES: usize = 50;

/// The fewest days of backups a promoted instance of each tier keeps: the platform keeps 30 to 35
/// days for tier 1; every tier keeps a week, never RDS's 1-day fallback.
fn tier_min_backup_retention_days(tier: u8) -> u32 {
    if tier == 1 { 30 } else { 7 }
}

/// RDS's range for `BackupRetentionPeriod` of an instance that keeps backups.
const MAX_BACKUP_RETENTION_DAYS: u32 = 35;

/// Minutes since midnight of `hh:mm`, when it is a valid time.
fn minutes_of_day(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// A backup window as RDS accepts it: `hh24:mi-hh24:mi` UTC, at least 30 minutes (it may span
/// midnight).
pub fn is_backup_window(window: &str) -> bool {
    let Some((start, end)) = window.split_once('-') else { return false };
    let (Some(start), Some(end)) = (minutes_of_day(start), minutes_of_day(end)) else { return false };
    let length = (end + 24 * 60 - start) % (24 * 60);
    length >= 30
}

const MINUTES_PER_WEEK: u32 = 7 * 24 * 60;

/// Minutes since Monday 00:00 of `ddd:hh:mm` (RDS's maintenance window ends: `wed:06:38`).
fn minutes_of_week(text: &str) -> Option<u32> {
    let (day, time) = text.split_once(':')?;
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let day = DAYS.iter().position(|d| d.eq_ignore_ascii_case(day))?;
    Some(u32::try_from(day).ok()? * 24 * 60 + minutes_of_day(time)?)
}

/// Whether the daily backup window `hh24:mi-hh24:mi` meets the weekly maintenance window
/// `ddd:hh24:mi-ddd:hh24:mi`: RDS refuses such a backup window ("Must not conflict with the
/// preferred maintenance window": PromoteReadReplica and ModifyDBInstance, PreferredBackupWindow).
/// Unreadable windows conflict with nothing (the plan's rules name a bad backup window).
pub fn backup_window_conflicts(backup: &str, maintenance: &str) -> bool {
    let Some((start, end)) = backup.split_once('-') else { return false };
    let (Some(start), Some(end)) = (minutes_of_day(start), minutes_of_day(end)) else { return false };
    let Some((from, to)) = maintenance.split_once('-') else { return false };
    let (Some(from), Some(to)) = (minutes_of_week(from), minutes_of_week(to)) else { return false };
    let day = 24 * 60;
    let backup_length = (end + day - start) % day;
    let maintenance_length = (to + MINUTES_PER_WEEK - from) % MINUTES_PER_WEEK;
    // Two spans of a circle meet when either starts inside the other.
    let inside = |point: u32, begin: u32, length: u32| (point + MINUTES_PER_WEEK - begin) % MINUTES_PER_WEEK < length;
    (0..7).any(|weekday| {
        let backup_start = weekday * day + start;
        inside(backup_start, from, maintenance_length) || inside(from, backup_start, backup_length)
    })
}

/// Tier-1 records must move within a minute of the flip.
const TIER1_MAX_TTL_SECONDS: u32 = 60;

impl Plan {
    /// Every broken rule, in document order.
    pub fn problems(&self) -> Vec<PlanProblem> {
        let mut found = Problems::default();
        self.check_identity(&mut found);
        self.check_targets(&mut found);
        self.check_databases(&mut found);
        self.check_standby_instances(&mut found);
        self.check_auto_scaling(&mut found);
        self.check_dns(&mut found);
        self.check_buckets(&mut found);
        self.check_trigger(&mut found);
        self.check_restore_test(&mut found);
        self.check_fence(&mut found);
        self.check_network(&mut found);
        self.check_readiness_needs(&mut found);
        self.check_custom_actions(&mut found);
        self.check_ecs_services(&mut found);
        self.check_accounts(&mut found);
        found.0
    }

    fn check_identity(&self, found: &mut Problems) {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 40
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !name_ok {
            found.add(
                ProblemCode::InvalidPlanName,
                "name",
                format!("{:?}: use 1 to 40 letters, digits or '-' (it is part of execution names)", self.name),
            );
        }
        if tier_limits(self.tier).is_none() {
            found.add(ProblemCode::UnknownTier, "tier", format!("{}: tiers are 1, 2 and 3", self.tier));
        }
        for (field, region) in [("primary_region", &self.primary_region), ("dr_region", &self.dr_region)] {
            if !KNOWN_REGIONS.contains(&region.as_str()) {
                found.add(ProblemCode::UnknownRegion, field, format!("{region:?} is not an AWS region"));
            }
        }
        if self.primary_region == self.dr_region {
            found.add(
                ProblemCode::ReplicaInPrimaryRegion,
                "dr_region",
                format!("the replica and the DR stack must live outside the primary region {}", self.primary_region),
            );
        }
        self.check_region_names(found);
    }

    /// `[region_names]` names the plan's two regions only, each so that texts can carry it, and
    /// never both alike: a report that says "written in X, replayed in X" tells nothing.
    fn check_region_names(&self, found: &mut Problems) {
        // A mistyped or repeated region is reported as such, not once more per name it orphans.
        let regions_valid = KNOWN_REGIONS.contains(&self.primary_region.as_str())
            && KNOWN_REGIONS.contains(&self.dr_region.as_str())
            && self.primary_region != self.dr_region;
        for (code, name) in &self.region_names {
            let field = format!("region_names.{code:?}");
            if regions_valid && code != &self.primary_region && code != &self.dr_region {
                found.add(
                    ProblemCode::UnknownRegion,
                    field.clone(),
                    format!(
                        "{code:?} is neither the primary region {} nor the DR region {}: name only those",
                        self.primary_region, self.dr_region
                    ),
                );
            }
            if !is_region_name(name) {
                found.add(
                    ProblemCode::InvalidIdentifier,
                    field,
                    format!(
                        "{name:?}: a letter, then up to {} letters, digits, spaces, '-', '.', '(' or ')'",
                        MAX_REGION_NAME_CHARS - 1
                    ),
                );
            }
        }
        // A region without a name is called by its code: that counts too.
        if regions_valid && self.primary_name().eq_ignore_ascii_case(self.dr_name()) {
            found.add(
                ProblemCode::InvalidIdentifier,
                format!("region_names.{:?}", self.dr_region),
                format!(
                    "{:?}: the primary region {} is called so too; give the regions names that tell them apart",
                    self.dr_name(),
                    self.primary_region
                ),
            );
        }
    }

    fn check_targets(&self, found: &mut Problems) {
        let Targets { rto_minutes, rpo_minutes } = self.targets;
        for (field, value) in [("targets.rto_minutes", rto_minutes), ("targets.rpo_minutes", rpo_minutes)] {
            if value == 0 {
                found.add(ProblemCode::InvalidTarget, field, "must be greater than zero".to_string());
            }
        }
        if let Some((max_rto, max_rpo)) = tier_limits(self.tier) {
            for (field, value, max) in
                [("targets.rto_minutes", rto_minutes, max_rto), ("targets.rpo_minutes", rpo_minutes, max_rpo)]
            {
                if value > max {
                    found.add(
                        ProblemCode::TargetExceedsTier,
                        field,
                        format!("{value} min is above the {max} min a tier-{} plan allows", self.tier),
                    );
                }
            }
        }
    }

    fn check_databases(&self, found: &mut Problems) {
        if self.databases.is_empty() || self.databases.len() > super::MAX_DATABASES {
            found.add(
                ProblemCode::InvalidDatabase,
                "databases",
                format!(
                    "{} databases: name 1 to {} as [[databases]] tables (primary_instance, replica_instance, \
                     backup_retention_days, backup_window), or one as [database]",
                    self.databases.len(),
                    super::MAX_DATABASES
                ),
            );
        }
        for (index, db) in self.databases.iter().enumerate() {
            self.check_database(index, db, found);
        }
    }

    fn check_database(&self, index: usize, db: &super::Database, found: &mut Problems) {
        let field = |name: &str| self.database_field(index, name);
        found.identifier(&field("primary_instance"), &db.primary_instance, is_rds_identifier);
        found.identifier(&field("replica_instance"), &db.replica_instance, is_rds_identifier);
        // Each instance is one database's: a failover promotes each replica once, and a failback
        // (which swaps the roles) must not find an instance in two pairs.
        let earlier = self.databases[..index]
            .iter()
            .flat_map(|other| [&other.primary_instance, &other.replica_instance])
            .collect::<Vec<_>>();
        for (part, name) in [("primary_instance", &db.primary_instance), ("replica_instance", &db.replica_instance)] {
            if earlier.contains(&name) || db.primary_instance == db.replica_instance {
                found.add(
                    ProblemCode::InvalidDatabase,
                    field(part),
                    format!("{name}: already named in this plan; each instance belongs to one database pair"),
                );
            }
        }
        let rpo_seconds = u64::from(self.targets.rpo_minutes) * 60;
        if db.lag_freshness_seconds == 0 || u64::from(db.lag_freshness_seconds) > rpo_seconds {
            found.add(
                ProblemCode::InvalidFreshnessWindow,
                field("lag_freshness_seconds"),
                format!("{} s: must be between 1 s and the RPO ({rpo_seconds} s)", db.lag_freshness_seconds),
            );
        }
        let retention = db.backup_retention_days;
        if !(1..=MAX_BACKUP_RETENTION_DAYS).contains(&retention) {
            found.add(
                ProblemCode::BackupRetentionOutOfRange,
                field("backup_retention_days"),
                format!("{retention} days: RDS keeps 1 to {MAX_BACKUP_RETENTION_DAYS} days"),
            );
        } else if retention < tier_min_backup_retention_days(self.tier) {
            found.add(
                ProblemCode::BackupRetentionBelowTier,
                field("backup_retention_days"),
                format!(
                    "{retention} days: a tier-{} plan keeps at least {} days",
                    self.tier,
                    tier_min_backup_retention_days(self.tier)
                ),
            );
        }
        if !is_backup_window(&db.backup_window) {
            found.add(
                ProblemCode::InvalidBackupWindow,
                field("backup_window"),
                format!("{:?}: use hh24:mi-hh24:mi in UTC, at least 30 minutes", db.backup_window),
            );
        }
    }

    fn check_fence(&self, found: &mut Problems) {
        let Some(fence) = &self.fence else { return };
        if fence.auto_scaling_group.is_empty() && fence.lambda.is_none() && !fence.database_read_only {
            found.add(
                ProblemCode::FenceWithoutMethod,
                "fence",
                "name auto_scaling_group, lambda or database_read_only = true: a planned move must stop the writer"
                    .to_string(),
            );
        }
        // The built-in barrier and a read-only fence speak SQL to the instances.
        let speaks_sql = fence.barrier_function.is_none() || fence.database_read_only;
        let without_secret = self.databases.iter().enumerate().filter(|(_, db)| db.credentials_secret.is_none());
        for (index, _) in without_secret.filter(|_| speaks_sql) {
            found.add(
                ProblemCode::FenceWithoutCredentials,
                self.database_field(index, "credentials_secret"),
                "the barrier (without fence.barrier_function) and a read-only fence speak SQL: name the secret \
                 of the database's credentials"
                    .to_string(),
            );
        }
        let rto_seconds = u64::from(self.targets.rto_minutes) * 60;
        let timeout = u64::from(fence.barrier_timeout_seconds);
        // A zero RTO is reported as such (InvalidTarget).
        if rto_seconds > 0 && (timeout == 0 || timeout > rto_seconds / 8) {
            found.add(
                ProblemCode::InvalidBarrierTimeout,
                "fence.barrier_timeout_seconds",
                format!("{timeout} s: must be between 1 s and an eighth of the RTO ({} s)", rto_seconds / 8),
            );
        }
        if !(1..=MAX_HOOK_TIMEOUT_SECONDS).contains(&fence.hook_timeout_seconds) {
            found.add(
                ProblemCode::InvalidHookTimeout,
                "fence.hook_timeout_seconds",
                format!(
                    "{} s: between 1 s and {MAX_HOOK_TIMEOUT_SECONDS} s (the fence function's {HOOK_CALLER_TIMEOUT_SECONDS} s \
                     less what the rest of the step needs)",
                    fence.hook_timeout_seconds
                ),
            );
        }
    }

    fn check_readiness_needs(&self, found: &mut Problems) {
        if let Some(serving) = &self.serving {
            for (field, value) in
                [("serving.load_balancer", &serving.load_balancer), ("serving.target_group", &serving.target_group)]
            {
                if value.trim().is_empty() {
                    found.add(ProblemCode::InvalidServing, field, "give its name or ARN".to_string());
                }
            }
            if serving.certificate_margin_days > 365 {
                found.add(
                    ProblemCode::InvalidServing,
                    "serving.certificate_margin_days",
                    format!("{} days: at most 365", serving.certificate_margin_days),
                );
            }
        }
        let Some(needs) = &self.readiness else { return };
        for (index, probe) in needs.probes.iter().enumerate() {
            let field = format!("readiness.probes[{index}]");
            if !super::lambda_function_name(&probe.function).starts_with(super::READINESS_PROBE_PREFIX) {
                found.add(
                    ProblemCode::InvalidReadinessProbe,
                    format!("{field}.function"),
                    format!(
                        "{}: the stack may invoke only functions named {}*",
                        probe.function,
                        super::READINESS_PROBE_PREFIX
                    ),
                );
            }
            if probe.region != self.primary_region && probe.region != self.dr_region {
                found.add(
                    ProblemCode::InvalidReadinessProbe,
                    format!("{field}.region"),
                    format!("{}: a probe runs in {} or {}", probe.region, self.primary_region, self.dr_region),
                );
            }
            if needs.probes.iter().filter(|other| other.name == probe.name).count() > 1 {
                found.add(
                    ProblemCode::InvalidReadinessProbe,
                    format!("{field}.name"),
                    format!("{}: named twice", probe.name),
                );
            }
        }
    }

    /// Each action a function the stack may invoke, named once so that its records and its
    /// idempotency key are its own, and given a time its point of the run can hold.
    fn check_accounts(&self, found: &mut Problems) {
        for (section, member) in self.accounts.sections() {
            if member.account.len() != 12 || !member.account.chars().all(|c| c.is_ascii_digit()) {
                found.add(
                    ProblemCode::InvalidAccount,
                    format!("accounts.{section}.account"),
                    format!("{:?}: an AWS account id is 12 digits", member.account),
                );
            }
            // IAM's role names: 1 to 64 of letters, digits and `+=,.@_-` (IAM API Reference, CreateRole).
            let role_ok = !member.role.is_empty()
                && member.role.len() <= 64
                && member.role.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !role_ok {
                found.add(
                    ProblemCode::InvalidAccount,
                    format!("accounts.{section}.role"),
                    format!("{:?}: a role name is 1 to 64 letters, digits or +=,.@_- (not an ARN)", member.role),
                );
            }
        }
    }

    fn check_custom_actions(&self, found: &mut Problems) {
        if self.custom_actions.len() > super::MAX_CUSTOM_ACTIONS {
            found.add(
                ProblemCode::InvalidCustomAction,
                "custom_actions",
                format!("{} actions: at most {}", self.custom_actions.len(), super::MAX_CUSTOM_ACTIONS),
            );
        }
        let longest = self.targets.rto_minutes.saturating_mul(60) / 8;
        for (index, action) in self.custom_actions.iter().enumerate() {
            let field = format!("custom_actions[{index}]");
            let name_ok = !action.name.is_empty()
                && action.name.len() <= 64
                && action.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                found.add(
                    ProblemCode::InvalidCustomAction,
                    format!("{field}.name"),
                    format!("{:?}: use 1 to 64 letters, digits, '-' or '_'", action.name),
                );
            }
            if self.custom_actions[..index].iter().any(|earlier| earlier.name == action.name) {
                found.add(
                    ProblemCode::InvalidCustomAction,
                    format!("{field}.name"),
                    format!(
                        "{}: named before, and an action's records and idempotency key are its name's",
                        action.name
                    ),
                );
            }
            if !super::lambda_function_name(&action.function).starts_with(super::CUSTOM_ACTION_PREFIX) {
                found.add(
                    ProblemCode::InvalidCustomAction,
                    format!("{field}.function"),
                    format!(
                        "{}: the stack may invoke only functions named {}*",
                        action.function,
                        super::CUSTOM_ACTION_PREFIX
                    ),
                );
            }
            if action.timeout_seconds == 0 || action.timeout_seconds > longest {
                found.add(
                    ProblemCode::InvalidCustomAction,
                    format!("{field}.timeout_seconds"),
                    format!(
                        "{} s: between 1 s and an eighth of the RTO ({longest} s), the share of the run each point may take",
                        action.timeout_seconds
                    ),
                );
            }
        }
    }

    /// Each service named once (its records are its `cluster/service`), with a failover count
    /// that serves and a standby and a minimum that fit under it.
    fn check_ecs_services(&self, found: &mut Problems) {
        if self.ecs_services.len() > super::MAX_ECS_SERVICES {
            found.add(
                ProblemCode::InvalidEcsService,
                "ecs_services",
                format!("{} services: at most {}", self.ecs_services.len(), super::MAX_ECS_SERVICES),
            );
        }
        // ECS: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens"
        // for a cluster's and a service's name (CreateCluster, CreateService).
        let is_ecs_name = |name: &str| {
            (1..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        for (index, service) in self.ecs_services.iter().enumerate() {
            let field = format!("ecs_services[{index}]");
            for (part, name) in [("cluster", &service.cluster), ("service", &service.service)] {
                if !is_ecs_name(name) {
                    found.add(
                        ProblemCode::InvalidEcsService,
                        format!("{field}.{part}"),
                        format!("{name:?}: an ECS {part} name is 1 to 255 letters, digits, '-' or '_'"),
                    );
                }
            }
            if self.ecs_services[..index].iter().any(|earlier| earlier.label() == service.label()) {
                found.add(
                    ProblemCode::InvalidEcsService,
                    format!("{field}.service"),
                    format!("{}: named before, and a service's records are its cluster/service", service.label()),
                );
            }
            if service.failover_count == 0 {
                found.add(
                    ProblemCode::InvalidEcsService,
                    format!("{field}.failover_count"),
                    "a failover must run at least one task".to_string(),
                );
            }
            if service.standby_count > service.failover_count {
                found.add(
                    ProblemCode::InvalidEcsService,
                    format!("{field}.standby_count"),
                    format!("{} is above the failover count {}", service.standby_count, service.failover_count),
                );
            }
            if service.minimum_healthy == 0
                || (service.failover_count > 0 && service.minimum_healthy > service.failover_count)
            {
                found.add(
                    ProblemCode::InvalidEcsService,
                    format!("{field}.minimum_healthy"),
                    format!(
                        "{}: between 1 and the failover count {} (a service that may serve with no task is not part of the plan)",
                        service.minimum_healthy, service.failover_count
                    ),
                );
            }
        }
    }

    fn check_network(&self, found: &mut Problems) {
        let Some(network) = &self.network else { return };
        for (field, ids, prefix) in [
            ("network.database_subnets", &network.database_subnets, "subnet-"),
            ("network.database_security_groups", &network.database_security_groups, "sg-"),
        ] {
            if ids.is_empty() || ids.iter().any(|id| !id.starts_with(prefix)) {
                found.add(ProblemCode::InvalidNetwork, field, format!("{ids:?}: give one or more {prefix}... ids"));
            }
        }
        // Cross-Region interface endpoints exist for S3, KMS, Lambda, ECS, IAM and Route 53 only
        // (AWS PrivateLink, "AWS services that support cross-Region access"): these calls from the
        // subnets would hang until their step's budget runs out.
        if network.primary_region_egress == super::Egress::EndpointsOnly {
            found.add(
                ProblemCode::NoRouteToPrimaryRegion,
                "network.primary_region_egress",
                format!(
                    "endpoints-only: preflight (RDS, CloudWatch), the fence (RDS, Auto Scaling) and the RPO check \
                     (RDS, CloudWatch) call {} from the database subnets, and no cross-Region interface endpoint \
                     serves those services: give the subnets a NAT route to {} (primary_region_egress = \"nat\")",
                    self.primary_region, self.primary_region
                ),
            );
        }
    }

    fn check_standby_instances(&self, found: &mut Problems) {
        let groups = &self.standby_instances;
        if groups.len() > super::MAX_STANDBY_GROUPS {
            found.add(
                ProblemCode::TooManyStandbyInstances,
                "standby_instances",
                format!("{} groups: at most {}", groups.len(), super::MAX_STANDBY_GROUPS),
            );
        }
        // The stack scopes StartInstances and StopInstances by one tag key (its condition names
        // it): every group selected by tag uses the same key.
        let keys: std::collections::BTreeSet<&str> =
            groups.iter().filter_map(|group| group.tag.as_ref()).map(|tag| tag.key.as_str()).collect();
        if keys.len() > 1 {
            found.add(
                ProblemCode::AmbiguousInstanceSelector,
                "standby_instances",
                format!(
                    "the groups' tags use {} keys ({}): use one key, with a value per group",
                    keys.len(),
                    keys.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        for (index, selector) in groups.iter().enumerate() {
            self.check_standby_group(index, selector, found);
        }
        // One DescribeInstanceStatus reads every instance of every group (at most 100 ids a call).
        let total: usize = groups.iter().map(super::InstanceSelector::expected).sum();
        if groups.len() > 1 && total > MAX_STANDBY_INSTANCES {
            found.add(
                ProblemCode::TooManyStandbyInstances,
                "standby_instances",
                format!("{total} in all: at most {MAX_STANDBY_INSTANCES} standby instances across the groups"),
            );
        }
        let ids = groups.iter().flat_map(|group| group.ids.iter().flatten()).collect::<Vec<_>>();
        if let Some(twice) = ids.iter().enumerate().find_map(|(i, id)| ids[..i].contains(id).then_some(*id)) {
            found.add(
                ProblemCode::AmbiguousInstanceSelector,
                "standby_instances",
                format!("{twice} is in two groups: each instance belongs to one"),
            );
        }
    }

    fn check_standby_group(&self, index: usize, selector: &super::InstanceSelector, found: &mut Problems) {
        let field = |name: &str| {
            let path = self.standby_field(index, name);
            if name.is_empty() { path.trim_end_matches('.').to_string() } else { path }
        };
        match (&selector.ids, &selector.tag) {
            (Some(_), Some(_)) => found.add(
                ProblemCode::AmbiguousInstanceSelector,
                field(""),
                "give either ids or tag, not both".to_string(),
            ),
            (None, None) => found.add(
                ProblemCode::EmptyInstanceSelector,
                field(""),
                "give the instance ids or a tag that selects them".to_string(),
            ),
            (Some(ids), None) => {
                if ids.is_empty() {
                    found.add(ProblemCode::EmptyInstanceSelector, field("ids"), "the list is empty".to_string());
                }
                for id in ids {
                    found.identifier(&field("ids"), id, is_instance_id);
                }
            }
            (None, Some(tag)) => {
                if tag.key.trim().is_empty() || tag.value.trim().is_empty() {
                    found.add(
                        ProblemCode::EmptyInstanceSelector,
                        field("tag"),
                        "tag key and value must not be empty".to_string(),
                    );
                }
                if selector.count.is_none_or(|count| count == 0) {
                    found.add(
                        ProblemCode::MissingStandbyCount,
                        field("count"),
                        "say how many instances the tag selects: a terminated one must be noticed, not skipped"
                            .to_string(),
                    );
                }
            }
        }
        if selector.ids.is_some() && selector.tag.is_none() && selector.count.is_some() {
            found.add(
                ProblemCode::AmbiguousInstanceSelector,
                field("count"),
                "the ids say how many: no count with ids".to_string(),
            );
        }
        if selector.expected() > MAX_STANDBY_INSTANCES {
            found.add(
                ProblemCode::TooManyStandbyInstances,
                field(""),
                format!("{}: at most {MAX_STANDBY_INSTANCES} standby instances", selector.expected()),
            );
        }
        if let Some(key) = &selector.ebs_kms_key
            && !(key.starts_with("arn:") && key.contains(":kms:") && key.contains(":key/"))
        {
            found.add(
                ProblemCode::InvalidIdentifier,
                field("ebs_kms_key"),
                format!("{key:?}: the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
            );
        }
    }

    fn check_auto_scaling(&self, found: &mut Problems) {
        let groups = &self.auto_scaling;
        let prefix = |index: usize| {
            if groups.len() == 1 { "auto_scaling".to_string() } else { format!("auto_scaling[{index}]") }
        };
        if groups.len() > super::MAX_AUTO_SCALING_GROUPS {
            found.add(
                ProblemCode::InvalidAutoScalingGroup,
                "auto_scaling",
                format!("{} groups: at most {}", groups.len(), super::MAX_AUTO_SCALING_GROUPS),
            );
        }
        for (index, asg) in groups.iter().enumerate() {
            check_group(&prefix(index), asg, found);
            if groups[..index].iter().any(|earlier| earlier.group == asg.group) {
                found.add(
                    ProblemCode::InvalidAutoScalingGroup,
                    format!("{}.group", prefix(index)),
                    format!("{}: named before; each group once", asg.group),
                );
            }
        }
        for (index, standby) in self.standby_instances.iter().enumerate() {
            // A selector that counts nothing is named by its own rules.
            if standby.expected() > 0 && usize::from(standby.minimum_healthy) > standby.expected() {
                found.add(
                    ProblemCode::InvalidMinimumHealthy,
                    self.standby_field(index, "minimum_healthy"),
                    format!("{} is above the {} standby instances", standby.minimum_healthy, standby.expected()),
                );
            }
        }
        let standby_minimum: u32 = self.standby_instances.iter().map(|group| u32::from(group.minimum_healthy)).sum();
        // Something must serve once traffic moves: the group, the standby instances, or an ECS
        // service (each has a minimum of at least 1). A failback's plan has none: Paris's compute
        // is its own deployment's.
        let group_minimum: u32 = groups.iter().map(|asg| u32::from(asg.minimum_healthy)).sum();
        if !self.reversed && group_minimum == 0 && standby_minimum == 0 && self.ecs_services.is_empty() {
            let (field, what) = if groups.is_empty() {
                ("auto_scaling".to_string(), "no Auto Scaling group, no standby instances to serve and no ECS service")
            } else {
                (format!("{}.minimum_healthy", prefix(0)), "the groups' and the standby instances' minimums are all 0")
            };
            found.add(
                ProblemCode::InvalidMinimumHealthy,
                field,
                format!("{what}: a failover would move traffic to nothing"),
            );
        }
        if let Some(fence) = &self.fence
            && !fence.auto_scaling_group.is_empty()
            && fence.auto_scaling_group.len() != groups.len()
        {
            found.add(
                ProblemCode::FenceWithoutMethod,
                "fence.auto_scaling_group",
                format!(
                    "{} primary group(s) for {} DR group(s): a failback gives each primary region's group back at its \
                     DR group's failover size: name one per [[auto_scaling]] group, in order",
                    fence.auto_scaling_group.len(),
                    groups.len()
                ),
            );
        }
    }

    fn check_dns(&self, found: &mut Problems) {
        let dns = &self.dns;
        if dns.records.is_empty() || dns.records.len() > super::MAX_DNS_RECORDS {
            found.add(
                ProblemCode::InvalidDnsRecord,
                "dns.records",
                format!(
                    "{} records: name 1 to {} as [[dns.records]] (record, ttl_seconds, primary, secondary), or one in \
                     [dns] itself",
                    dns.records.len(),
                    super::MAX_DNS_RECORDS
                ),
            );
        }
        let zone = fqdn(&dns.hosted_zone);
        for (index, record) in dns.records.iter().enumerate() {
            let field = |name: &str| self.dns_field(index, name);
            if self.tier == 1 && record.ttl_seconds > TIER1_MAX_TTL_SECONDS {
                found.add(
                    ProblemCode::TtlTooHighForTier,
                    field("ttl_seconds"),
                    format!(
                        "{} s: a tier-1 record must have a TTL of at most {TIER1_MAX_TTL_SECONDS} s",
                        record.ttl_seconds
                    ),
                );
            }
            let name = fqdn(&record.record);
            if dns.hosted_zone.trim().is_empty() || !(name == zone || name.ends_with(&format!(".{zone}"))) {
                found.add(
                    ProblemCode::RecordOutsideZone,
                    field("record"),
                    format!("{name} is not inside the hosted zone {zone}"),
                );
            }
            let earlier = &dns.records[..index];
            if earlier.iter().any(|other| fqdn(&other.record) == name && other.record_type == record.record_type) {
                found.add(
                    ProblemCode::InvalidDnsRecord,
                    field("record"),
                    format!("{name} {} named twice: each failover pair once", record.record_type),
                );
            }
            if !["A", "AAAA", "CNAME"].contains(&record.record_type.as_str()) {
                found.add(
                    ProblemCode::UnsupportedRecordType,
                    field("record_type"),
                    format!("{:?}: use A, AAAA or CNAME", record.record_type),
                );
            }
            for (part, target) in [("primary", &record.primary), ("secondary", &record.secondary)] {
                found.identifier(&field(&format!("{part}.set_identifier")), &target.set_identifier, |s| {
                    !s.trim().is_empty()
                });
                found.identifier(&field(&format!("{part}.value")), &target.value, |s| !s.trim().is_empty());
            }
            if record.primary.value == record.secondary.value {
                found.add(
                    ProblemCode::SameDnsTarget,
                    field("secondary.value"),
                    "the secondary must answer something other than the primary".to_string(),
                );
            }
            if record.primary.set_identifier == record.secondary.set_identifier {
                found.add(
                    ProblemCode::DuplicateSetIdentifier,
                    field("secondary.set_identifier"),
                    "PRIMARY and SECONDARY records need different set identifiers".to_string(),
                );
            }
        }
        match (dns.strategy, &dns.routing) {
            (DnsStrategy::RoutingHealthCheck, None) => found.add(
                ProblemCode::MissingRouting,
                "dns.routing",
                "the routing-health-check strategy needs the routing health check, its alarm and metric".to_string(),
            ),
            (DnsStrategy::RoutingHealthCheck, Some(routing)) => {
                for (field, value) in [
                    ("dns.routing.health_check", &routing.health_check),
                    ("dns.routing.alarm", &routing.alarm),
                    ("dns.routing.namespace", &routing.namespace),
                    ("dns.routing.metric", &routing.metric),
                ] {
                    found.identifier(field, value, |s| !s.trim().is_empty() && s.len() <= 255);
                }
                if routing.namespace.starts_with("AWS/") {
                    found.add(
                        ProblemCode::InvalidIdentifier,
                        "dns.routing.namespace",
                        format!("{:?}: AWS/ namespaces are AWS's own; the runbook publishes here", routing.namespace),
                    );
                }
                let detection = self.trigger.as_ref().map(|t| t.detection_health_check.as_str());
                if detection == Some(routing.health_check.as_str()) {
                    found.add(
                        ProblemCode::DetectionCheckOnRecord,
                        "dns.routing.health_check",
                        format!(
                            "{:?} is the trigger's detection health check: on the PRIMARY record it would move traffic \
                             as soon as {} looks unhealthy, and back when it recovers",
                            routing.health_check,
                            self.primary_name()
                        ),
                    );
                }
            }
            (DnsStrategy::RecordUpsert, Some(_)) => found.add(
                ProblemCode::UnusedRouting,
                "dns.routing",
                "the record-upsert strategy moves the record itself: remove [dns.routing], or use routing-health-check"
                    .to_string(),
            ),
            (DnsStrategy::RecordUpsert, None) => {}
        }
    }

    fn check_buckets(&self, found: &mut Problems) {
        for (index, pair) in self.s3_replication.iter().enumerate() {
            let field = format!("s3_replication[{index}]");
            found.identifier(&format!("{field}.source_bucket"), &pair.source_bucket, is_bucket_name);
            found.identifier(&format!("{field}.replica_bucket"), &pair.replica_bucket, is_bucket_name);
            if pair.source_bucket == pair.replica_bucket {
                found.add(
                    ProblemCode::BucketPairSameBucket,
                    field.clone(),
                    format!("{} cannot replicate to itself", pair.source_bucket),
                );
            }
            if pair.replication_metrics && pair.replication_rule.as_deref().is_none_or(|r| r.trim().is_empty()) {
                found.add(
                    ProblemCode::MissingReplicationRule,
                    format!("{field}.replication_rule"),
                    "replication metrics are read per rule: name the rule's id".to_string(),
                );
            }
            let seen_before =
                self.s3_replication[..index].iter().any(|earlier| earlier.source_bucket == pair.source_bucket);
            if seen_before {
                found.add(
                    ProblemCode::DuplicateBucketPair,
                    field,
                    format!("{} is listed more than once", pair.source_bucket),
                );
            }
        }
        found.identifier("reports.bucket", &self.reports.bucket, is_bucket_name);
    }

    fn check_restore_test(&self, found: &mut Problems) {
        let Some(test) = &self.restore_test else { return };
        let mut rule = |ok: bool, field: &str, message: String| {
            if !ok {
                found.add(ProblemCode::InvalidRestoreTest, format!("restore_test.{field}"), message);
            }
        };
        rule(
            (1..=744).contains(&test.max_snapshot_age_hours),
            "max_snapshot_age_hours",
            format!("{}: between 1 and 744 (a month)", test.max_snapshot_age_hours),
        );
        rule(
            test.instance_class.starts_with("db.") && test.instance_class.len() > 3,
            "instance_class",
            format!("{:?}: an RDS class, e.g. db.t4g.medium", test.instance_class),
        );
        rule(!test.subnet_group.trim().is_empty(), "subnet_group", "name the DB subnet group".to_string());
        rule(!test.engine.trim().is_empty(), "engine", "name the engine".to_string());
        rule(!test.engine_version.trim().is_empty(), "engine_version", "name the version, e.g. \"15\"".to_string());
        if let Some(hook) = &test.sql_probe_function {
            let name_ok = !hook.is_empty()
                && hook.len() <= 170
                && hook.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
            rule(name_ok, "sql_probe_function", format!("{hook:?}: a Lambda function name or ARN"));
        }
        rule(
            (1..=MAX_HOOK_TIMEOUT_SECONDS).contains(&test.hook_timeout_seconds),
            "hook_timeout_seconds",
            format!(
                "{} s: between 1 s and {MAX_HOOK_TIMEOUT_SECONDS} s (the validation's {HOOK_CALLER_TIMEOUT_SECONDS} s)",
                test.hook_timeout_seconds
            ),
        );
        // The janitor must not delete the instance of a run still within its RTO.
        let needed_hours = self.targets.rto_minutes.div_ceil(60) + 2;
        let expiry_problem = if !(1..=48).contains(&test.expiry_hours) {
            Some(format!("{}: between 1 and 48", test.expiry_hours))
        } else if test.expiry_hours < needed_hours {
            Some(format!(
                "{} h: at least the RTO plus 2 h ({needed_hours} h), or the janitor races the test",
                test.expiry_hours
            ))
        } else {
            None
        };
        if let Some(message) = expiry_problem {
            rule(false, "expiry_hours", message);
        }
    }

    fn check_trigger(&self, found: &mut Problems) {
        let Some(trigger) = &self.trigger else { return };
        found.identifier("trigger.detection_health_check", &trigger.detection_health_check, |s| {
            !s.trim().is_empty() && s.len() <= 255
        });
        if trigger.alarms.is_empty() {
            found.add(
                ProblemCode::MissingTriggerAlarm,
                "trigger.alarms",
                "name at least one alarm, or remove [trigger] to fail over by hand only".to_string(),
            );
        }
        for alarm in &trigger.alarms {
            found.identifier("trigger.alarms", alarm, |s| !s.trim().is_empty() && s.len() <= 255);
        }
        let window = Trigger::MIN_CONFIRMATION_WINDOW_SECONDS..=Trigger::MAX_CONFIRMATION_WINDOW_SECONDS;
        if !window.contains(&trigger.confirmation_window_seconds) {
            found.add(
                ProblemCode::InvalidConfirmationWindow,
                "trigger.confirmation_window_seconds",
                format!(
                    "{} s: must be between {} s and {} s",
                    trigger.confirmation_window_seconds,
                    window.start(),
                    window.end()
                ),
            );
        }
        if let Some(url) = &trigger.probe_url {
            let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or_default();
            let host_name = host.split(['/', ':', '?']).next().unwrap_or_default();
            if host_name.is_empty() {
                found.add(ProblemCode::InvalidProbeUrl, "trigger.probe_url", format!("{url:?}: use an http(s) URL"));
            } else if let Some(record) = self.dns.records.iter().find(|r| fqdn(host_name) == fqdn(&r.record)) {
                // During the outage the failover record answers the DR region, which would answer
                // the probe.
                found.add(
                    ProblemCode::InvalidProbeUrl,
                    "trigger.probe_url",
                    format!(
                        "{url:?} goes through the failover record {}: probe {} itself",
                        record.record,
                        self.primary_name()
                    ),
                );
            }
        }
    }
}

#[derive(Default)]
struct Problems(Vec<PlanProblem>);

impl Problems {
    fn add(&mut self, code: ProblemCode, field: impl Into<String>, message: String) {
        self.0.push(PlanProblem { code, field: field.into(), message });
    }

    fn identifier(&mut self, field: &str, value: &str, is_valid: impl Fn(&str) -> bool) {
        if !is_valid(value) {
            self.add(ProblemCode::InvalidIdentifier, field, format!("{value:?} is not a valid name here"));
        }
    }
}

/// RDS: 1-63 letters, digits or hyphens, starting with a letter, no trailing or double hyphen.
/// The group's own rules: its name, its sizes, and a minimum its failover size reaches.
/// One group's rules; `prefix` is where its fields are (`auto_scaling`, `auto_scaling[i]`).
fn check_group(prefix: &str, asg: &super::AutoScaling, found: &mut Problems) {
    found.identifier(&format!("{prefix}.group"), &asg.group, |s| !s.trim().is_empty() && s.len() <= 255);
    let (standby, failover) = (format!("{prefix}.standby"), format!("{prefix}.failover"));
    for (field, capacity) in [(standby, asg.standby), (failover, asg.failover)] {
        if capacity.min > capacity.max {
            found.add(
                ProblemCode::CapacityMinAboveMax,
                format!("{field}.min"),
                format!("min {} is above max {}", capacity.min, capacity.max),
            );
        } else if !(capacity.min..=capacity.max).contains(&capacity.desired) {
            found.add(
                ProblemCode::DesiredOutsideMinMax,
                format!("{field}.desired"),
                format!("desired {} is outside {}..={}", capacity.desired, capacity.min, capacity.max),
            );
        }
    }
    if asg.failover.desired == 0 {
        found.add(
            ProblemCode::FailoverCapacityZero,
            format!("{prefix}.failover.desired"),
            "a failover must bring up at least one instance".to_string(),
        );
    }
    if asg.minimum_healthy > asg.failover.desired {
        found.add(
            ProblemCode::InvalidMinimumHealthy,
            format!("{prefix}.minimum_healthy"),
            format!("{} is above the failover's desired {}", asg.minimum_healthy, asg.failover.desired),
        );
    }
}

fn is_rds_identifier(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--")
}

fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// S3: 3-63 lower-case letters, digits, dots or hyphens, starting and ending with a letter or digit.
fn is_bucket_name(name: &str) -> bool {
    let edge_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&name.len())
        && name.starts_with(edge_ok)
        && name.ends_with(edge_ok)
        && name.chars().all(|c| edge_ok(c) || c == '-' || c == '.')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::backup_window_conflicts;

    #[test]
    fn a_backup_window_conflicts_with_a_maintenance_window_it_meets_on_its_day() {
        // moto's default maintenance window, and RDS's examples.
        assert!(backup_window_conflicts("07:00-07:30", "wed:06:38-wed:07:08"));
        assert!(backup_window_conflicts("06:00-06:40", "wed:06:38-wed:07:08"));
        assert!(!backup_window_conflicts("07:08-07:38", "wed:06:38-wed:07:08"), "touching is not meeting");
        assert!(!backup_window_conflicts("01:00-01:30", "wed:06:38-wed:07:08"));
        // Across midnight, and a maintenance window across the week's end.
        assert!(backup_window_conflicts("23:45-00:15", "mon:00:00-mon:00:30"));
        assert!(backup_window_conflicts("23:50-00:20", "sun:23:30-mon:00:10"));
        assert!(!backup_window_conflicts("02:00-02:30", "sun:23:30-mon:00:10"));
        assert!(!backup_window_conflicts("nonsense", "wed:06:38-wed:07:08"));
    }
}
