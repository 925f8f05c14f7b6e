//! Plain and XML rendering of flows and expectations (libnetfilter_conntrack 1.0.9 layout).
