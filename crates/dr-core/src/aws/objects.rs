//! S3 objects, the one way the project reads and writes them: the plan store, heartbeats, RPO
//! snapshots and reports. A missing key is `None`; a missing bucket is its named error
//! (`ResourceNotFound`), whatever the call.

use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{DrError, sdk_error_code};
use crate::time::{self, Timestamp};

/// An object as read: its bytes and the ETag a conditional write must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// The condition of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Only if the object still has this ETag (`If-Match`).
    Matches(String),
    /// Only if there is no object yet (`If-None-Match: *`).
    Absent,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    Written,
    /// 412: the object changed (or now exists) since it was read; another writer won.
    PreconditionFailed,
    /// 409 ConditionalRequestConflict: a concurrent conditional write to the key is in progress;
    /// nobody has won yet, so trying again gives 200 or 412.
    Conflict,
}

fn region_of(s3: &aws_sdk_s3::Client) -> String {
    s3.config().region().map(ToString::to_string).unwrap_or_default()
}

/// Reads `s3://bucket/key`; `None` when there is no such key.
pub async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<Object>, DrError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => {
            let etag = object.e_tag().map(str::to_string);
            let body = object.body.collect().await.map_err(|e| DrError::AwsTransient {
                service: "s3",
                operation: "GetObject",
                message: e.to_string(),
            })?;
            Ok(Some(Object { body: body.to_vec(), etag }))
        }
        Err(err) => match sdk_error_code(&err) {
            Some("NoSuchKey") => Ok(None),
            Some("NoSuchBucket") => Err(DrError::bucket_not_found(bucket, &region_of(s3))),
            _ => Err(DrError::from_sdk("s3", "GetObject", err)),
        },
    }
}

/// The keys under `prefix`, every page, oldest first by last modification; with `since`, only
/// the objects written since then.
pub async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    since: Option<Timestamp>,
) -> Result<Vec<String>, DrError> {
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| match sdk_error_code(&err) {
            Some("NoSuchBucket") => DrError::bucket_not_found(bucket, &region_of(s3)),
            _ => DrError::from_sdk("s3", "ListObjectsV2", err),
        })?;
        for object in page.contents() {
            let modified = object.last_modified().and_then(time::from_smithy);
            if since.is_some_and(|since| modified.is_some_and(|at| at < since)) {
                continue;
            }
            if let Some(key) = object.key() {
                keys.push((modified, key.to_string()));
            }
        }
    }
    keys.sort();
    Ok(keys.into_iter().map(|(_, key)| key).collect())
}

/// Reads and parses a JSON object; one that is not a `what` is `InvalidInput`.
pub async fn get_json<T: DeserializeOwned>(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    what: &str,
) -> Result<Option<(T, Object)>, DrError> {
    let Some(object) = get(s3, bucket, key).await? else { return Ok(None) };
    let value = serde_json::from_slice(&object.body)
        .map_err(|e| DrError::InvalidInput { message: format!("s3://{bucket}/{key} is not a {what}: {e}") })?;
    Ok(Some((value, object)))
}

/// Writes `s3://bucket/key`.
pub async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), DrError> {
    let written =
        s3.put_object().bucket(bucket).key(key).content_type(content_type).body(ByteStream::from(body)).send().await;
    match written {
        Ok(_) => Ok(()),
        Err(err) if sdk_error_code(&err) == Some("NoSuchBucket") => {
            Err(DrError::bucket_not_found(bucket, &region_of(s3)))
        }
        Err(err) => Err(DrError::from_sdk("s3", "PutObject", err)),
    }
}

/// Writes a value as pretty JSON.
pub async fn put_json<T: Serialize>(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    value: &T,
) -> Result<(), DrError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| DrError::serialisation(key, e))?;
    put(s3, bucket, key, body, "application/json").await
}

/// Writes `s3://bucket/key` only if `condition` holds, atomically (S3 conditional writes).
pub async fn put_if(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    content_type: &str,
    condition: &Precondition,
) -> Result<Conditional, DrError> {
    let request = s3.put_object().bucket(bucket).key(key).content_type(content_type).body(ByteStream::from(body));
    let request = match condition {
        Precondition::Matches(etag) => request.if_match(etag),
        Precondition::Absent => request.if_none_match("*"),
    };
    let err = match request.send().await {
        Ok(_) => return Ok(Conditional::Written),
        Err(err) => err,
    };
    match err.raw_response().map(|raw| raw.status().as_u16()) {
        Some(412) => return Ok(Conditional::PreconditionFailed),
        Some(409) => return Ok(Conditional::Conflict),
        _ => {}
    }
    if sdk_error_code(&err) == Some("NoSuchBucket") {
        return Err(DrError::bucket_not_found(bucket, &region_of(s3)));
    }
    Err(DrError::from_sdk("s3", "PutObject", err))
}
