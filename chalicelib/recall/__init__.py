"""Lapsed-member recall (流失召回), measured against a holdout.

- ``sweep``: the daily timer. Each stage of N days reads the members whose last activity fell N
  days ago (``Member.by_active_day``), in bounded pages with a saved cursor.
- ``decide``: pure. Eligibility, the holdout split and the plan for one member at one stage.
- ``record``: one transaction per member (decision record, member, coupon, message), so a sweep
  that dies half-way and runs again recalls every due member exactly once.
- ``outcomes``: returns (activity within the attribution window) and coupon redemptions.
- ``report``: due, sent, held out, returned, lift with a 95 % interval, cost per return.
- ``silent``: group members still silent after the intercept, listed for ops.
"""
