"""``siyu simulate``: a synthetic chain (``world``) lived through the real endpoints on a virtual
clock (``driver``), ending with the last weekly digest and a summary checked against siyu's
invariants (``summary``)."""
