"""The numbers the plans run the business on: counters written as events are processed
(``counters``), the KPIs computed from them (``kpis``), and reads of a scope's days (``read``)."""
