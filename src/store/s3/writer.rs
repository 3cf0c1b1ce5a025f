//! Streaming an object into S3 from a synchronous `Write`.
//!
//! Bytes fill a buffer of one part. An object that ends within its first part goes up whole in
//! one `PutObject` at `commit`. A bigger one becomes a multipart upload: each full part is
//! handed to a task on the runtime, at most `parallel_parts` of them at once (the writer waits
//! for a slot before filling the next part), and `commit` uploads the last part and completes
//! the upload. A writer dropped before `commit`, or whose upload failed, aborts the upload so no
//! part is left behind (and billed).

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::runtime::Handle;
use tokio::task::JoinSet;

use super::sdk_error;
use crate::store::{ObjectWriter, StoreError};

/// S3 takes at most this many parts in one upload.
const MAX_PARTS: u32 = 10_000;
/// How long a dropped writer waits for its upload to be aborted.
const ABORT_WAIT: Duration = Duration::from_secs(30);

/// Where the object goes, and what it is.
#[derive(Clone)]
pub(super) struct Target {
    pub client: Client,
    pub handle: Handle,
    pub bucket: String,
    pub key: String,
    pub uri: String,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// A multipart upload under way.
struct Upload {
    id: String,
    /// The number the next part gets (parts count from 1).
    next_part: u32,
    in_flight: JoinSet<Result<CompletedPart, StoreError>>,
    done: Vec<CompletedPart>,
}

pub(super) struct S3Writer {
    target: Target,
    part_size: usize,
    parallel_parts: usize,
    buf: Vec<u8>,
    upload: Option<Upload>,
    /// A write failed: the object can no longer be committed.
    failed: bool,
}

impl S3Writer {
    pub fn new(target: Target, part_size: usize, parallel_parts: usize) -> S3Writer {
        S3Writer {
            target,
            part_size,
            parallel_parts: parallel_parts.max(1),
            buf: Vec::new(),
            upload: None,
            failed: false,
        }
    }

    /// Sends the full buffer as the next part, starting the multipart upload on the first one.
    fn ship_part(&mut self) -> Result<(), StoreError> {
        let target = &self.target;
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => {
                let id = target.handle.block_on(create_upload(target))?;
                self.upload.insert(Upload {
                    id,
                    next_part: 1,
                    in_flight: JoinSet::new(),
                    done: Vec::new(),
                })
            }
        };
        while upload.in_flight.len() >= self.parallel_parts {
            wait_for_one(target, upload)?;
        }
        if upload.next_part > MAX_PARTS {
            return Err(StoreError::TooBig {
                uri: target.uri.clone(),
                max_parts: MAX_PARTS,
                part_size: self.part_size,
            });
        }
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        let number = upload.next_part;
        upload.next_part += 1;
        upload.in_flight.spawn_on(
            upload_part(target.clone(), upload.id.clone(), number, body),
            &target.handle,
        );
        Ok(())
    }

    /// Uploads the last part, waits for every part and completes the upload.
    fn finish(&mut self, mut upload: Upload) -> Result<String, StoreError> {
        let target = &self.target;
        if !self.buf.is_empty() {
            let body = std::mem::take(&mut self.buf);
            upload.in_flight.spawn_on(
                upload_part(target.clone(), upload.id.clone(), upload.next_part, body),
                &target.handle,
            );
        }
        let result = (|| {
            while !upload.in_flight.is_empty() {
                wait_for_one(target, &mut upload)?;
            }
            let mut parts = std::mem::take(&mut upload.done);
            parts.sort_by_key(|part| part.part_number());
            target
                .handle
                .block_on(complete_upload(target, &upload.id, parts))
        })();
        if result.is_err() {
            abort(target, upload);
        }
        result.map(|()| target.uri.clone())
    }

    fn io_error(&mut self, err: StoreError) -> io::Error {
        self.failed = true;
        io::Error::other(err)
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(self.io_error(StoreError::Abandoned {
                uri: self.target.uri.clone(),
            }));
        }
        if data.is_empty() {
            return Ok(0);
        }
        // A full part is sent only once more bytes come, so an object of exactly one part is
        // still a single PutObject.
        if self.buf.len() >= self.part_size {
            if let Err(err) = self.ship_part() {
                return Err(self.io_error(err));
            }
        }
        let n = data.len().min(self.part_size - self.buf.len());
        let wanted = self.buf.len() + n;
        if wanted > self.buf.capacity() {
            // Grow by doubling, but never past one part.
            let capacity = (self.buf.capacity() * 2).max(wanted).min(self.part_size);
            self.buf.reserve_exact(capacity - self.buf.len());
        }
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Parts are sent when full; a part may not be smaller than S3's minimum.
        Ok(())
    }
}

impl ObjectWriter for S3Writer {
    fn commit(mut self: Box<Self>) -> Result<String, StoreError> {
        if self.failed {
            return Err(StoreError::Abandoned {
                uri: self.target.uri.clone(),
            });
        }
        match self.upload.take() {
            Some(upload) => self.finish(upload),
            None => {
                let body = std::mem::take(&mut self.buf);
                let target = &self.target;
                target.handle.block_on(put_object(target, body))?;
                Ok(target.uri.clone())
            }
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            abort(&self.target, upload);
        }
    }
}

/// Waits for one part in flight; a failed part fails the object.
fn wait_for_one(target: &Target, upload: &mut Upload) -> Result<(), StoreError> {
    match target.handle.block_on(upload.in_flight.join_next()) {
        Some(Ok(Ok(part))) => {
            upload.done.push(part);
            Ok(())
        }
        Some(Ok(Err(err))) => Err(err),
        Some(Err(join)) => Err(StoreError::Service {
            operation: "UploadPart",
            uri: target.uri.clone(),
            message: format!("the upload task ended early: {join}"),
            retryable: false,
            source: Box::new(join),
        }),
        None => Ok(()),
    }
}

/// Stops the parts in flight and aborts the upload, waiting (a bounded time) for S3 to answer.
/// Waits on a channel rather than `block_on`, so that it cannot panic even when a writer is
/// dropped inside async code.
fn abort(target: &Target, mut upload: Upload) {
    upload.in_flight.abort_all();
    let (done, finished) = std::sync::mpsc::channel();
    let target = target.clone();
    let handle = target.handle.clone();
    handle.spawn(async move {
        while upload.in_flight.join_next().await.is_some() {}
        // Best effort: S3's lifecycle rules clean up what an abort could not.
        let _ = target
            .client
            .abort_multipart_upload()
            .bucket(&target.bucket)
            .key(&target.key)
            .upload_id(&upload.id)
            .send()
            .await;
        let _ = done.send(());
    });
    let _ = finished.recv_timeout(ABORT_WAIT);
}

async fn put_object(target: &Target, body: Vec<u8>) -> Result<(), StoreError> {
    target
        .client
        .put_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .set_content_type(target.content_type.clone())
        .set_metadata(Some(target.metadata.clone()).filter(|m| !m.is_empty()))
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| sdk_error("PutObject", &target.uri, err))?;
    Ok(())
}

async fn create_upload(target: &Target) -> Result<String, StoreError> {
    let output = target
        .client
        .create_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .set_content_type(target.content_type.clone())
        .set_metadata(Some(target.metadata.clone()).filter(|m| !m.is_empty()))
        .send()
        .await
        .map_err(|err| sdk_error("CreateMultipartUpload", &target.uri, err))?;
    output
        .upload_id()
        .map(str::to_string)
        .ok_or_else(|| StoreError::Service {
            operation: "CreateMultipartUpload",
            uri: target.uri.clone(),
            message: "the answer has no upload id".into(),
            retryable: false,
            source: "no UploadId".into(),
        })
}

async fn upload_part(
    target: Target,
    upload_id: String,
    number: u32,
    body: Vec<u8>,
) -> Result<CompletedPart, StoreError> {
    // Part numbers are at most MAX_PARTS, well within i32.
    let number = i32::try_from(number).unwrap_or(i32::MAX);
    let output = target
        .client
        .upload_part()
        .bucket(&target.bucket)
        .key(&target.key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| sdk_error("UploadPart", &target.uri, err))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(output.e_tag().map(str::to_string))
        .build())
}

async fn complete_upload(
    target: &Target,
    upload_id: &str,
    parts: Vec<CompletedPart>,
) -> Result<(), StoreError> {
    target
        .client
        .complete_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|err| sdk_error("CompleteMultipartUpload", &target.uri, err))?;
    Ok(())
}
