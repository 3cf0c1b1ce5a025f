//! Reading a bucket as streams: listing with sizes, and an object's body as a `Read` that is
//! fed while it downloads.

use std::io::{self, Read};

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::operation::get_object::GetObjectOutput;

use super::{S3Store, sdk_error};
use crate::store::{StoreError, check_key};

/// How many of the body's chunks may wait between the download and the reader.
const CHUNKS_AHEAD: usize = 32;

impl S3Store {
    /// The keys under `prefix` with their sizes, sorted by key (ListObjectsV2, page by page).
    pub(super) fn list_objects(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let uri = crate::store::Store::uri(self, prefix);
        self.handle.block_on(async {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|err| sdk_error("ListObjectsV2", &uri, err))?;
                keys.extend(page.contents().iter().filter_map(|object| {
                    let size = object.size().unwrap_or(0).max(0) as u64;
                    object.key().map(|key| (key.to_string(), size))
                }));
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => {
                        token = Some(next.to_string());
                    }
                    _ => break,
                }
            }
            keys.sort();
            Ok(keys)
        })
    }

    /// GetObject of `key` (at `uri`, for errors): its answer, or `None` when there is no such
    /// object.
    pub(super) async fn send_get(
        &self,
        key: &str,
        uri: &str,
    ) -> Result<Option<GetObjectOutput>, StoreError> {
        let request = self.client.get_object().bucket(&self.bucket).key(key);
        match request.send().await {
            Ok(output) => Ok(Some(output)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                Ok(None)
            }
            Err(err) => Err(sdk_error("GetObject", uri, err)),
        }
    }

    /// The object `key`'s body as a stream: a task on the store's runtime downloads it, a few
    /// chunks ahead of the reader.
    pub(super) fn open_reader(
        &self,
        key: &str,
    ) -> Result<Option<Box<dyn Read + Send>>, StoreError> {
        check_key(key)?;
        let uri = crate::store::Store::uri(self, key);
        let Some(output) = self.handle.block_on(self.send_get(key, &uri))? else {
            return Ok(None);
        };
        let (sender, receiver) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        let mut body = output.body;
        self.handle.spawn(async move {
            loop {
                let chunk = match body.try_next().await {
                    Ok(Some(bytes)) => Ok(bytes.to_vec()),
                    Ok(None) => break,
                    Err(err) => Err(io::Error::other(format!(
                        "GetObject {uri}: the body broke off: {}",
                        DisplayErrorContext(&err)
                    ))),
                };
                let failed = chunk.is_err();
                if sender.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Some(Box::new(BodyReader {
            receiver,
            chunk: Vec::new(),
            at: 0,
        })))
    }
}

/// The reading end of a download.
struct BodyReader {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
