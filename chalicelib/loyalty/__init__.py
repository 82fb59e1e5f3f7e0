"""Loyalty: the points ledger and the helpers shared by the loyalty duties and timers."""
