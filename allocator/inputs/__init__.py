"""Inputs: reading results from Ads Manager exports (CSV, .xlsx) and the TikTok Business API client."""
