"""Changing the rules: the preview of a candidate set (``preview``: replayed through the duties
and the dry-run executor), and publishing and rolling back through the admin API (``api``) and
the CLI (``commands``). Above the duties; ``chalicelib.rules`` (what a rule set is, its checks,
its stored versions) stays below everything that reads rules."""
