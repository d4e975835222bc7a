//! Per-call configuration for the calls that change the estate: the SDK does not retry them.
//!
//! A mutating call whose answer is lost (a connection reset, a timeout after AWS acted) may have
//! taken effect. The SDK's retry would send it again blindly: a second promotion, a second
//! restore. Instead the step fails with `AwsTransient`, waits, and on its next attempt observes
//! the estate before acting: a change that took effect is `AlreadyDone`. Reads keep the SDK's
//! retries (throttling, 5xx).
//!
//! ```text
//! rds.promote_read_replica().db_instance_identifier(id).customize().config_override(once::rds()).send()
//! ```

use aws_smithy_types::retry::RetryConfig;

macro_rules! once {
    ($($service:ident => $krate:ident),* $(,)?) => {
        $(
            #[doc = concat!("No SDK retry for this `", stringify!($krate), "` call.")]
            pub fn $service() -> $krate::config::Builder {
                $krate::config::Builder::default().retry_config(RetryConfig::disabled())
            }
        )*
    };
}

once! {
    autoscaling => aws_sdk_autoscaling,
    cloudwatch => aws_sdk_cloudwatch,
    ec2 => aws_sdk_ec2,
    ecs => aws_sdk_ecs,
    lambda => aws_sdk_lambda,
    rds => aws_sdk_rds,
    route53 => aws_sdk_route53,
}
