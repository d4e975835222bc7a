# The production root module's call, as the customer sketched it, with what the module needs
# beside it. Before `terraform apply`:
#
#   scripts/package arm64                # the architecture below
#   sam package --s3-bucket platform-dr-artifacts-ireland --region eu-west-1 \
#     --output-template-file terraform/examples/prod/packaged.yaml
#   drctl plan export plans/paris-ireland.toml --json > terraform/examples/prod/plan.json
#
# docs/deploy.md ("With Terraform") says why each is there, and what to do after a failover.

terraform {
  # S3's own lock file (use_lockfile) came with Terraform 1.10.
  required_version = ">= 1.10.0"

  # State in the DR region: during a Paris outage, Terraform must still run where the failover
  # went (docs/deploy.md, "When the state backend is in the failed region").
  backend "s3" {
    bucket       = "platform-terraform-state-ireland"
    key          = "dr-orchestrator/prod.tfstate"
    region       = "eu-west-1"
    use_lockfile = true
  }
}

provider "aws" {
  alias  = "dr"
  region = "eu-west-1"
}

provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"
}

module "bcp_dr" {
  source         = "../../modules/dr"
  primary_region = "eu-west-3"
  dr_region      = "eu-west-1"
  rpo_hours      = 1
  rto_hours      = 4

  providers = { aws = aws.dr, aws.us_east_1 = aws.us_east_1 }

  plan_file              = "${path.root}/../../../plans/paris-ireland.toml"
  plan_export_file       = "${path.root}/plan.json"
  packaged_template_file = "${path.root}/packaged.yaml"
  artifacts_bucket       = "platform-dr-artifacts-ireland"
  plan_state_bucket_name = "platform-dr-plans-ireland"

  # The deployment's choices: samconfig.toml's, for the same estate (tests/terraform.rs checks).
  architecture      = "arm64"
  health_path       = "/health"
  unhealthy_minutes = 3

  tags = { application = "platform", "dr-plan" = "paris-ireland-prod" }
}

output "failover_state_machine_arn" {
  value = module.bcp_dr.failover_state_machine_arn
}

output "notification_topic_arn" {
  value = module.bcp_dr.notification_topic_arn
}
