"""Campaigns and the content calendar of the store groups (issue 21; rules in campaigns.json).

- ``calendar``: pure. Which pushes are due per group per day: the weekday's theme or the
  holiday's greeting (003 §2.2.2, 002 §3.4), each slot's time in the store's zone.
- ``content``: pure. ``content_for`` picks a push's text: a campaign that takes the slot, a dated
  piece, else the theme's pool by a stable rotation.
- ``pushes``: the timer. Records each due push once (its key: group, day, slot) as a scheduled
  outbox message; the day before, a slot without content alerts the store. Campaigns to a
  segment queue one message per member per occurrence.
- ``confirm``: the group owner's confirmation of a mass message, polled from WeCom and recorded.
- ``report``: per campaign and per calendar week: queued, sent, confirmed, delivered.
- ``commands``: ``siyu campaigns calendar | preview | report | run``.

Every send goes through the outbox (chalicelib/delivery/sender.py): its slots, caps, quiet hours,
quotas, budget and the one mass message a day per customer group (docs/wechat.md §4.5).
"""
