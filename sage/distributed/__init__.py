"""Scaling out on Ray (an optional extra: `pip install -e '.[ray]'`).

`batch` explains features on a pool of Ray actors, each holding the subject once; `mining` mines shards
of the corpus on them, merged exactly (`sage.store.shards`, `MiningState.merge`); `cluster` connects and
sizes the pool. The driver (the process that runs `sage`) alone writes results and stores, so resuming
works as without Ray. docs/scaling.md says how to run it on a multi-GPU node or a cluster."""
