"""The model of a declared dataset: its statistics, its registry of saved versions, drift and
shift tests, the challenger, and evaluation."""
