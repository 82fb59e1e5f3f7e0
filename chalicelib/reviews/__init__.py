"""Negative reviews (差评): a ticket per review at or below the rule's score, the SLA timer that
alerts, escalates and reminds (``tickets``), and ``siyu tickets`` (``commands``)."""
