"""Storage: the SQLite ledger of results, decisions, pushes and authorizations, and what is read back from it (budgets in force, restatements)."""
