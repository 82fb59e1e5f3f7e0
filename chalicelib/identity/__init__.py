"""One person, one member: which person a platform id is, learning WeChat's UnionID, and merging
two persons who turn out to be one (docs/identity.md).

- ``resolve``: the person of an event's platform id, in the event's one read (pure decision);
- ``learn``: the UnionID of an official-account follower or a WeCom contact, asked of WeChat
  off the webhook's path, through the outbox's sender;
- ``merge``: two persons into one, exactly once, resumable; ``unlink`` undoes a mistaken one.
"""
