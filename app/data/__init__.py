"""Records: the generator, the ways they arrive (ingest, inbox, labels), the data lake that keeps
them, the ledger of their batches, and the checks they pass."""
