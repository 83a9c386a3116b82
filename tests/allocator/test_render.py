"""The one-line diagnostics summary printed under a hierarchical reallocation."""

from allocator.presentation.render import diagnostics_line


def test_diagnostics_line_names_the_worst_variables():
    diag = {
        "model": "hierarchical",
        "sampler": "nutpie",
        "gate": "passed",
        "fallback": False,
        "max_rhat": 1.0042,
        "max_rhat_var": "rate",
        "min_ess_bulk": 612.4,
        "min_ess_var": "creative_sd",
        "divergences": 0,
        "sampling_seconds": 8.123,
    }
    assert diagnostics_line(diag) == (
        "nutpie, gate passed, max R-hat 1.004 (rate), min bulk ESS 612 (creative_sd), 0 divergences, 8.1 s"
    )


def test_diagnostics_line_says_when_it_fell_back():
    diag = {
        "sampler": "nutpie",
        "gate": "failed",
        "fallback": True,
        "max_rhat": 1.02,
        "min_ess_bulk": 310.0,
        "divergences": 2,
    }
    assert diagnostics_line(diag) == (
        "nutpie, gate failed (conjugate fallback), max R-hat 1.020, min bulk ESS 310, 2 divergences"
    )


def test_diagnostics_line_of_the_fast_path():
    diag = {
        "model": "hierarchical",
        "method": "laplace_is",
        "sampler": "laplace_is",
        "gate": "passed",
        "fallback": False,
        "pareto_k": 0.4471,
        "ess": 759.5,
        "sampling_seconds": 0.31,
    }
    assert diagnostics_line(diag) == "laplace_is, gate passed, Pareto k 0.45, importance ESS 760, 0.3 s"
