"""sparkbandit's decisions, storage, inputs and presentation, and the CLI over them.

`plan` (the campaign plan) is shared by all; `decisions/` turns posteriors into budgets, `storage/` is the
ledger, `inputs/` reads exports and the TikTok API, `workflows/` composes them into the commands' library
side, `presentation/` prints and writes, and `cli/` is the click commands (imported by nothing in the library).
"""
