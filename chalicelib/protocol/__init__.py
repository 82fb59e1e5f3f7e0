"""The edge: WeChat, WeCom and POS wire formats in, normalized domain events out.

Nothing past this package knows about XML, signatures or AES.
"""
