# The stacks `sam deploy` deploys, from the same source: the packaged template.yaml in the DR
# region, template-us-east-1.yaml in us-east-1, then the plan published to the plan store by the
# drctl that exported it. Every parameter the plan determines comes from `drctl plan export
# --json` (the names drctl deploy params gives SAM); this module derives none of them.

locals {
  exported = jsondecode(file(var.plan_export_file))
  plan     = local.exported.plan

  # The DR region's stack: the plan's parameters (an empty one keeps the template's default, as
  # drctl deploy params leaves it out), then the deployment's choices that were given.
  choices = {
    PlanStateBucketName          = var.plan_state_bucket_name
    HostedZoneId                 = var.hosted_zone_id
    DatabaseCredentialsSecretArn = var.database_credentials_secret_arn
    NotificationKmsKeyId         = var.notification_kms_key_id
    PagerDutyRoutingKey          = var.pagerduty_routing_key
    OpsgenieApiKey               = var.opsgenie_api_key
    OpsgenieApiUrl               = var.opsgenie_api_url
    Architecture                 = var.architecture
    FailoverReservedConcurrency  = var.failover_reserved_concurrency == null ? null : tostring(var.failover_reserved_concurrency)
    LogRetentionDays             = var.log_retention_days == null ? null : tostring(var.log_retention_days)
    TriggerReevaluationSchedule  = var.trigger_reevaluation_schedule
    RpoCheckSchedule             = var.rpo_check_schedule
    PlanReconcilerSchedule       = var.plan_reconciler_schedule
    ReadinessCheckSchedule       = var.readiness_check_schedule
    RestoreTestSchedule          = var.restore_test_schedule
    RpoMetricNamespace           = var.rpo_metric_namespace
    RpoWarningPercent            = var.rpo_warning_percent == null ? null : tostring(var.rpo_warning_percent)
    ReportRetentionDays          = var.report_retention_days == null ? null : tostring(var.report_retention_days)
    ReportRetentionMode          = var.report_retention_mode
    RestoreProbeSubnetIds        = var.restore_probe_subnet_ids == null ? null : join(",", var.restore_probe_subnet_ids)
    RestoreProbeSecurityGroupIds = var.restore_probe_security_group_ids == null ? null : join(",", var.restore_probe_security_group_ids)
  }
  stack_parameters = merge(
    { for name, value in local.exported.stack_parameters : name => value if value != "" },
    { for name, value in local.choices : name => value if value != null },
  )

  detection_choices = {
    HealthPath       = var.health_path
    UnhealthyMinutes = var.unhealthy_minutes == null ? null : tostring(var.unhealthy_minutes)
  }
  detection_parameters = local.exported.detection_stack_parameters == null ? null : merge(
    local.exported.detection_stack_parameters,
    { for name, value in local.detection_choices : name => value if value != null },
  )
  detection_template = coalesce(var.detection_template_file, "${path.module}/../../../template-us-east-1.yaml")
}

# The root module's words against the plan's: a disagreement stops the apply before anything is
# deployed, with the two values.
resource "terraform_data" "plan_agrees" {
  input = local.exported.version

  lifecycle {
    precondition {
      condition     = var.primary_region == local.plan.primary_region
      error_message = "primary_region = \"${var.primary_region}\" but plan ${local.plan.name} fails over from \"${local.plan.primary_region}\": change one of them."
    }
    precondition {
      condition     = var.dr_region == local.plan.dr_region
      error_message = "dr_region = \"${var.dr_region}\" but plan ${local.plan.name} fails over to \"${local.plan.dr_region}\": change one of them."
    }
    precondition {
      condition     = var.rpo_hours * 60 == local.plan.targets.rpo_minutes
      error_message = "rpo_hours = ${var.rpo_hours} but plan ${local.plan.name} holds an RPO of ${local.plan.targets.rpo_minutes / 60} h (targets.rpo_minutes = ${local.plan.targets.rpo_minutes}): change one of them."
    }
    precondition {
      condition     = var.rto_hours * 60 == local.plan.targets.rto_minutes
      error_message = "rto_hours = ${var.rto_hours} but plan ${local.plan.name} holds an RTO of ${local.plan.targets.rto_minutes / 60} h (targets.rto_minutes = ${local.plan.targets.rto_minutes}): change one of them."
    }
  }
}

# CloudFormation reads a template over 51,200 bytes from S3 only: the packaged one goes beside
# the code sam package uploaded, under its own digest (a new build, a new key).
resource "aws_s3_object" "packaged_template" {
  bucket = var.artifacts_bucket
  key    = "dr-orchestrator/${local.plan.name}/template-${filemd5(var.packaged_template_file)}.yaml"
  source      = var.packaged_template_file
  source_hash = filemd5(var.packaged_template_file)
}

resource "aws_cloudformation_stack" "dr" {
  name         = var.stack_name
  template_url = "https://${var.artifacts_bucket}.s3.${var.dr_region}.amazonaws.com/${aws_s3_object.packaged_template.key}"
  parameters   = local.stack_parameters
  # The template is SAM's (AWS::Serverless-2016-10-31): CloudFormation expands it, and it
  # creates the functions' roles (unnamed).
  capabilities = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
  tags         = var.tags

  depends_on = [terraform_data.plan_agrees]
}

# The detection health check on the primary endpoint, its alarm and the rule that forwards it to
# the DR region: only for a plan with a [trigger].
resource "aws_cloudformation_stack" "detection" {
  count    = local.detection_parameters == null ? 0 : 1
  provider = aws.us_east_1

  name          = "${var.stack_name}-us-east-1"
  template_body = file(local.detection_template)
  parameters    = local.detection_parameters
  # Its rule's role (ForwardRole, unnamed).
  capabilities = ["CAPABILITY_IAM"]
  tags         = var.tags

  depends_on = [terraform_data.plan_agrees]
}

# The plan published where the runs load it, by the drctl that exported it: it validates the
# plan, refuses one the deployed stack's parameters disagree with (PlanStackMismatch), and keeps
# every earlier version a run in flight may name (an S3 object managed here would be deleted on
# the next version).
resource "terraform_data" "published_plan" {
  triggers_replace = [local.exported.version, aws_cloudformation_stack.dr.id]

  provisioner "local-exec" {
    command = "${var.drctl} plan publish '${var.plan_file}' --bucket '${aws_cloudformation_stack.dr.outputs["PlanStateBucketName"]}' --stack '${var.stack_name}'"
    environment = {
      AWS_REGION = var.dr_region
    }
  }
}
