//! An Auto Scaling group's capacity, `(min, desired, max)`: read, set, and the copy a planned
//! move's fence keeps in a tag on the group it scales to zero. The fence ([`super::fence`]) writes
//! the tag and its undo gives the capacity back; the compute steps ([`super::compute`]) give it
//! back to a group a failback raises or stands down. Both use these, and neither imports the
//! other.

use aws_sdk_autoscaling::types::{AutoScalingGroup, Tag as AsgTag};

use crate::aws::once;
use crate::error::DrError;

/// Tag on the group a fence scaled to zero: its capacity before, `min/desired/max`.
pub const FENCE_CAPACITY_TAG: &str = "dr-fenced-capacity";

pub(crate) fn current_capacity(group: &AutoScalingGroup) -> (i32, i32, i32) {
    (group.min_size().unwrap_or(0), group.desired_capacity().unwrap_or(0), group.max_size().unwrap_or(0))
}

pub(crate) fn capacity_text((min, desired, max): (i32, i32, i32)) -> String {
    format!("min {min} / desired {desired} / max {max}")
}

/// A capacity as a tag keeps it (the fence's, the trigger's preparation mark): `min/desired/max`.
pub(crate) fn capacity_tag_text((min, desired, max): (i32, i32, i32)) -> String {
    format!("{min}/{desired}/{max}")
}

/// The capacity a tag keeps ([`capacity_tag_text`]), if it is one.
pub(crate) fn parse_capacity_tag(text: &str) -> Option<(i32, i32, i32)> {
    let parts: Vec<i32> = text.split('/').filter_map(|part| part.parse().ok()).collect();
    let [min, desired, max] = parts[..] else { return None };
    Some((min, desired, max))
}

/// Sets a group's (min, desired, max).
pub async fn set_capacity(
    autoscaling: &aws_sdk_autoscaling::Client,
    group: &str,
    (min, desired, max): (i32, i32, i32),
) -> Result<(), DrError> {
    autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(min)
        .desired_capacity(desired)
        .max_size(max)
        .customize()
        .config_override(once::autoscaling())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "UpdateAutoScalingGroup", e))?;
    Ok(())
}

/// Keeps `capacity` in the group's [`FENCE_CAPACITY_TAG`], before the fence scales it to zero.
pub(crate) async fn keep_fenced_capacity(
    autoscaling: &aws_sdk_autoscaling::Client,
    group: &str,
    capacity: (i32, i32, i32),
) -> Result<(), DrError> {
    let tag = AsgTag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(FENCE_CAPACITY_TAG)
        .value(capacity_tag_text(capacity))
        .propagate_at_launch(false)
        .build();
    autoscaling
        .create_or_update_tags()
        .tags(tag)
        .customize()
        .config_override(once::autoscaling())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "CreateOrUpdateTags", e))?;
    Ok(())
}

/// The capacity a fence took from the group (its [`FENCE_CAPACITY_TAG`]), if it carries one; a
/// tag that is not `min/desired/max` is `FenceFailed` (a human restores the group).
pub fn fenced_capacity(group: &AutoScalingGroup, region: &str) -> Result<Option<(i32, i32, i32)>, DrError> {
    let Some(tag) = group.tags().iter().find(|tag| tag.key() == Some(FENCE_CAPACITY_TAG)) else {
        return Ok(None);
    };
    let value = tag.value().unwrap_or_default();
    match parse_capacity_tag(value) {
        Some(capacity) => Ok(Some(capacity)),
        None => Err(DrError::FenceFailed {
            region: region.to_string(),
            reason: format!(
                "{}'s tag {FENCE_CAPACITY_TAG} = {value:?} is not min/desired/max: restore it by hand",
                group.auto_scaling_group_name().unwrap_or_default()
            ),
        }),
    }
}

/// Removes the fence's capacity tag once the group has its capacity back (or its standby size).
pub async fn drop_fence_tag(autoscaling: &aws_sdk_autoscaling::Client, group: &str) -> Result<(), DrError> {
    let tag = AsgTag::builder().resource_id(group).resource_type("auto-scaling-group").key(FENCE_CAPACITY_TAG).build();
    autoscaling
        .delete_tags()
        .tags(tag)
        .customize()
        .config_override(once::autoscaling())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "DeleteTags", e))?;
    Ok(())
}
