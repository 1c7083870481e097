"""Evaluation: fold plans run by one runner, typed results, metrics and their reports."""
