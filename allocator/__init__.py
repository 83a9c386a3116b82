"""Decisions: policies, platform guardrails, stopping rules, data import, ledger and the CLI."""
