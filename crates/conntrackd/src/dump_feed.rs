//! Feeds a cache dump to the task writing it: whenever that task has
//! written a chunk, it hands the cursor to the main loop, which owns the
//! caches and renders the next chunk (`Node::dump_chunk`). At most one
//! chunk per client is in memory, and the loop is never held up by it.

use tokio::sync::{mpsc, oneshot};

use crate::control::reply::ReplySource;
use crate::node::DumpCursor;

/// A cursor waiting for its next chunk.
#[derive(Debug)]
pub struct ChunkRequest {
    pub cursor: DumpCursor,
    pub reply: oneshot::Sender<(String, DumpCursor)>,
}

/// The rest of a dump after its first chunk.
#[derive(Debug)]
pub struct DumpFeed {
    cursor: Option<DumpCursor>,
    main_loop: mpsc::Sender<ChunkRequest>,
}

impl DumpFeed {
    pub fn new(cursor: DumpCursor, main_loop: mpsc::Sender<ChunkRequest>) -> DumpFeed {
        DumpFeed {
            cursor: Some(cursor),
            main_loop,
        }
    }
}

impl ReplySource for DumpFeed {
    async fn next_part(&mut self) -> Option<String> {
        let cursor = self.cursor.take().filter(|c| !c.finished())?;
        let (reply, chunk) = oneshot::channel();
        self.main_loop
            .send(ChunkRequest { cursor, reply })
            .await
            .ok()?;
        let (text, cursor) = chunk.await.ok()?;
        self.cursor = Some(cursor);
        Some(text)
    }
}
