"""A machine-learning pipeline that keeps a salary model learning from a stream of records."""
