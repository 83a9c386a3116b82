"""Bayesian models of each creative's conversion rate and cost: observations in, posterior draws out.

Nothing here knows about budgets. `pymc` and `arviz` are imported only inside
`models.hierarchical`, so importing this package stays fast.
"""
