"""SyncNet scoring: the expert colour SyncNet's per-window cosine, and syncnet_v2's AV offset, LSE-D and LSE-C."""
