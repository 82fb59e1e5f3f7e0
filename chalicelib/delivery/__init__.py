"""Delivery: every outbound message goes through the outbox (``outbox.py``), is sent by the
queue handler (``sender.py``) on one of the channels (``channels.py``) through the WeChat / WeCom
API client (``api.py``), within the discipline the rules set (``discipline.py``)."""
