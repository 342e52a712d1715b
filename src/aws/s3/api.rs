//! The S3 calls bucket reconciliation makes, as a trait: the SDK adapter implements it, tests
//! use fakes.

use std::future::Future;

use super::{BucketSettings, Encryption, PublicAccess, Rule};
use crate::aws::AwsError;

/// What `HeadBucket` says about a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The bucket exists and is ours to read.
    Exists,
    /// No bucket of that name.
    Missing,
}

/// The S3 calls reconciliation makes; [`super::S3`] over the SDK, fakes in tests.
pub trait BucketApi: Sync {
    /// Whether the bucket exists (403 and wrong-region answers are errors).
    fn presence(&self, bucket: &str) -> impl Future<Output = Result<Presence, AwsError>> + Send;
    /// The managed settings of an existing bucket.
    fn settings(&self, bucket: &str) -> impl Future<Output = Result<BucketSettings, AwsError>> + Send;
    /// Creates the bucket in the environment's region, tagged with the environment.
    fn create(&self, bucket: &str, env_name: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets versioning.
    fn put_versioning(
        &self,
        bucket: &str,
        enabled: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets default encryption.
    fn put_encryption(
        &self,
        bucket: &str,
        e: &Encryption,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets the public access block.
    fn put_public_access(
        &self,
        bucket: &str,
        p: PublicAccess,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Replaces the lifecycle configuration (deletes it when `rules` is empty).
    fn put_lifecycle(
        &self,
        bucket: &str,
        rules: &[Rule],
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}
