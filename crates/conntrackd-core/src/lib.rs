//! Sans-IO core of conntrackd: caches, filters, counters; never reads a clock or touches a socket.
