"""Intake: files that carry items, labels and verdicts together.

This sits above the apps: it reads the rows once and hands each part to its own app's ingest
functions (items to datasets, labels to labeling, verdicts to judging) in one transaction, so
datasets never reaches up into the apps that stand on it (DESIGN.md).
"""
