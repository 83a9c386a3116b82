"""Decisions: policies, the platform's guardrails, stopping rules and the engine that turns posteriors into budgets with a reason per creative."""
