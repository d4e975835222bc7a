output "failover_state_machine_arn" {
  description = "Start a failover (or a drill) here."
  value       = aws_cloudformation_stack.dr.outputs["FailoverStateMachineArn"]
}

output "reprotect_state_machine_arn" {
  description = "After a failover, once the primary region answers: the old primary retired, a replica of the new primary."
  value       = aws_cloudformation_stack.dr.outputs["ReprotectStateMachineArn"]
}

output "round_trip_state_machine_arn" {
  description = "The round-trip game day."
  value       = aws_cloudformation_stack.dr.outputs["RoundTripStateMachineArn"]
}

output "restore_test_state_machine_arn" {
  description = "The monthly restore test."
  value       = aws_cloudformation_stack.dr.outputs["RestoreTestStateMachineArn"]
}

output "notification_topic_arn" {
  description = "Subscribe the on-call here."
  value       = aws_cloudformation_stack.dr.outputs["NotificationTopicArn"]
}

output "plan_state_bucket_name" {
  description = "The plan store (drctl --bucket)."
  value       = aws_cloudformation_stack.dr.outputs["PlanStateBucketName"]
}

output "plan_version" {
  description = "The plan version published."
  value       = local.exported.version
}

output "dashboard_url" {
  description = "The DR posture dashboard in the CloudWatch console (docs/operations.md, The dashboard)."
  value       = aws_cloudformation_stack.dr.outputs["DashboardUrl"]
}
