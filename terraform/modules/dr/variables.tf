# What the customer's root module sketches (primary_region, dr_region, rpo_hours, rto_hours),
# checked against the plan; the plan itself (as drctl exports it); and what the template needs
# that the plan does not determine: the deployment's choices. A choice left null keeps the
# template's own default (template.yaml is the one place defaults are written).

variable "primary_region" {
  type        = string
  description = "The region the workload runs in (the plan's primary_region), e.g. eu-west-3."
}

variable "dr_region" {
  type        = string
  description = "The region it fails over to (the plan's dr_region), e.g. eu-west-1; the default aws provider must be in it."
}

variable "rpo_hours" {
  type        = number
  description = "The RPO the workload is held to, in hours: must be the plan's targets.rpo_minutes / 60."
}

variable "rto_hours" {
  type        = number
  description = "The RTO the workload is held to, in hours: must be the plan's targets.rto_minutes / 60."
}

variable "plan_file" {
  type        = string
  description = "The plan (TOML) drctl publishes to the plan store after the stack is deployed; Terraform itself never reads it."
}

variable "plan_export_file" {
  type        = string
  description = "The plan as `drctl plan export PLAN --json` writes it: the plan, its version and the stack parameters it determines."
}

variable "packaged_template_file" {
  type        = string
  description = "template.yaml packaged for deployment: `scripts/package` (sam build), then `sam package --s3-bucket <artifacts_bucket> --output-template-file packaged.yaml`."
}

variable "detection_template_file" {
  type        = string
  default     = null
  description = "The us-east-1 stack's template (template-us-east-1.yaml); null: the repository's own, beside this module."
}

variable "artifacts_bucket" {
  type        = string
  description = "A bucket in the DR region that holds the packaged template and the code sam package uploaded."
}

variable "stack_name" {
  type        = string
  default     = "dr-orchestrator"
  description = "The DR region's stack; the us-east-1 stack is named <stack_name>-us-east-1, as samconfig.toml names it."
}

variable "drctl" {
  type        = string
  default     = "drctl"
  description = "The drctl that exported the plan, which publishes it once the stack is deployed."
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags on both stacks (and so on every resource CloudFormation tags)."
}

# The deployment's choices: template.yaml's parameters the plan does not determine.

variable "plan_state_bucket_name" {
  type        = string
  description = "PlanStateBucketName: the plan store the stack creates (plans, their versions and states)."
}

variable "hosted_zone_id" {
  type        = string
  default     = null
  description = "HostedZoneId: the hosted zone of the failover record (a record-upsert plan)."
}

variable "database_credentials_secret_arn" {
  type        = string
  default     = null
  description = "DatabaseCredentialsSecretArn: the full ARN of each database secret of the plan in the DR region, comma-separated."
}

variable "notification_kms_key_id" {
  type        = string
  default     = null
  description = "NotificationKmsKeyId: a customer-managed key for the notification topic."
}

variable "pagerduty_routing_key" {
  type        = string
  default     = null
  sensitive   = true
  description = "PagerDutyRoutingKey: a PagerDuty Events API v2 integration key; each notice becomes a PagerDuty event (docs/operations.md, Paging the on-call)."
}

variable "opsgenie_api_key" {
  type        = string
  default     = null
  sensitive   = true
  description = "OpsgenieApiKey: an Opsgenie API integration key; each notice becomes an Opsgenie alert."
}

variable "opsgenie_api_url" {
  type        = string
  default     = null
  description = "OpsgenieApiUrl: https://api.opsgenie.com, or https://api.eu.opsgenie.com for an EU account."
}

variable "architecture" {
  type        = string
  default     = null
  description = "Architecture: arm64 or x86_64, as the packaged build was made."
}

variable "failover_reserved_concurrency" {
  type        = number
  default     = null
  description = "FailoverReservedConcurrency: reserved executions for the failover path's functions (0: none)."
}

variable "log_retention_days" {
  type        = number
  default     = null
  description = "LogRetentionDays: how long the functions' and state machines' logs are kept."
}

variable "trigger_reevaluation_schedule" {
  type        = string
  default     = null
  description = "TriggerReevaluationSchedule."
}

variable "rpo_check_schedule" {
  type        = string
  default     = null
  description = "RpoCheckSchedule."
}

variable "plan_reconciler_schedule" {
  type        = string
  default     = null
  description = "PlanReconcilerSchedule."
}

variable "readiness_check_schedule" {
  type        = string
  default     = null
  description = "ReadinessCheckSchedule."
}

variable "restore_test_schedule" {
  type        = string
  default     = null
  description = "RestoreTestSchedule."
}

variable "rpo_metric_namespace" {
  type        = string
  default     = null
  description = "RpoMetricNamespace."
}

variable "rpo_warning_percent" {
  type        = number
  default     = null
  description = "RpoWarningPercent: the RPO warning alarm, in percent of the RPO."
}

variable "report_retention_days" {
  type        = number
  default     = null
  description = "ReportRetentionDays: S3 Object Lock on the report bucket, in days (0: none); decide it at the first apply."
}

variable "report_retention_mode" {
  type        = string
  default     = null
  description = "ReportRetentionMode: COMPLIANCE or GOVERNANCE."
}

variable "restore_probe_subnet_ids" {
  type        = list(string)
  default     = null
  description = "RestoreProbeSubnetIds: where the restore test's SQL probe runs."
}

variable "restore_probe_security_group_ids" {
  type        = list(string)
  default     = null
  description = "RestoreProbeSecurityGroupIds."
}

# The us-east-1 stack's choices (template-us-east-1.yaml).

variable "health_path" {
  type        = string
  default     = null
  description = "HealthPath: what the detection health check requests on the primary endpoint."
}

variable "unhealthy_minutes" {
  type        = number
  default     = null
  description = "UnhealthyMinutes: how long the detection check stays unhealthy before its alarm."
}
