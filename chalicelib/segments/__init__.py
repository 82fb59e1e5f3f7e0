"""Segments and tags of members (issue 21; docs/rules.md, "Segments").

``segments.json`` defines them over a closed set of member facts (``rules.models.CONDITION_FACTS``);
``sweep`` evaluates members (a daily full pass, plus the members touched since) into the member's
``segments`` / ``segment_tags`` and one membership row per segment and member in the loyalty table
(``segment#<name>`` / ``<store>#<member>``, ``plans.SetSegments``); ``read`` is what campaigns and
the CLI ask: a segment's members and sizes, one query, never a scan.
"""
