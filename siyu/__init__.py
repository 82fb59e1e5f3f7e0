"""The tooling around the Lambda code in ``chalicelib/``, none of which ships in the Lambda
package (Chalice packages ``app.py`` and ``chalicelib/`` only): the ``siyu`` command (``cli``),
``make run``'s local stack (``local``), the simulation (``simulate``) and the request meter of the
benchmarks and tests (``metering``). It depends on ``chalicelib``; nothing there imports it."""
