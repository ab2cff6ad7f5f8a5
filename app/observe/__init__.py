"""Seeing the pipeline: metric definitions (metrics.py) and evaluation reports (report.py)."""
