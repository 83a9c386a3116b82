"""Presentation: tables on the terminal, CSV/JSON/ad-group sheets, the HTML report, and files written atomically."""
