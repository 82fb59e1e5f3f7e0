"""The store layer: the one door to DynamoDB.

- ``keys``: every key siyu writes or reads by, built in one place (no f-string key elsewhere);
- ``db``: reads (one item, many items in one request, queries), conditional writes and
  transactions, and the one place where DynamoDB's refusals become an ``Outcome``:
  ``NEW`` (written now), ``ALREADY_DONE`` (the write's guard found its work done: success),
  ``CONFLICT`` (something changed since it was read: read again and decide again).

Nothing outside this package catches a condition failure or builds a key; the models
(``chalicelib/state/models.py``) stay the schema.
"""
