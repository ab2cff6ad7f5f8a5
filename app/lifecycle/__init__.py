"""Decisions about versions: what is served and why, the promotion gate, forgetting a batch,
retention, and the audit trail all of them (and drift) append to."""
