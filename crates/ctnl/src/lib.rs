//! ctnetlink codec: conntrack and expectation messages to and from bytes.
