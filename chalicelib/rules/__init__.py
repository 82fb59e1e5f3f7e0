"""Rules ops edit as JSON: models, loading, the active rule set.

This is the minimal loader of the foundation: files in ``SIYU_RULES_DIR`` (default
``rules/``), validated by the models in ``models.py``, versioned by content hash.
"""
