"""Experiments (issue 21 item 4; 002 §4.4): A/B tests of a campaign or a rule change, defined in
``rules/experiments.json``.

- ``assign``: pure. Which group a member is in (a stable salted hash: the holdout or an arm by
  weight), and the rule file a member's arm gets when a rule change is under test.
- ``exposure``: the instruction that records a member's first exposure (arm and time), once per
  member and experiment (``plans.RecordOnce`` on ``experiment#<name>`` / member).
- ``report``: per experiment and metric (conversion, redemption, order value), each arm against
  the baseline: n, rate or mean, lift with its 95 % interval, p-value and verdict
  (chalicelib/stats.py), and the members in too many experiments at once.
- ``commands``: ``siyu experiments plan|report``.
"""
