# The module deploys into two regions: the DR region (the caller's default `aws` provider, where
# the stack of template.yaml runs) and us-east-1 (`aws.us_east_1`: Route 53's health checks and
# their alarms live there). The caller passes both:
#
#   module "bcp_dr" {
#     source    = "../../modules/dr"
#     providers = { aws = aws.dr, aws.us_east_1 = aws.us_east_1 }
#     ...
#   }
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source                = "hashicorp/aws"
      version               = ">= 5.0"
      configuration_aliases = [aws.us_east_1]
    }
  }
}
