"""Workflows: the commands' library side (reallocate over the ledger, sync, apply, learn, init), each composed of decisions, storage, inputs and presentation."""
