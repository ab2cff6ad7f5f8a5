"""A machine-learning pipeline that keeps a regression model learning from a stream of records:
the built-in salary generator's, or any tabular dataset declared in one file (app/dataset.py)."""
