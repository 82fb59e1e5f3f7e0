"""A small chain for the console's tests: two weeks of followers, orders, NPS answers and a
negative review in two stores, sent through the real webhooks (signed as WeChat and the POS sign
them) of a running stack, on the days they happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import requests

from chalicelib.settings import Settings
from siyu.local import callbacks

REVIEW_ID = "R-console-1"
REVIEWER = "oReviewerS001"
S002_MEMBER = "oShopperS002-0"


@dataclass(frozen=True)
class Chain:
    members: dict[str, str]  # member id -> store
    review_id: str


def _post(url: str, request: callbacks.Request) -> None:
    answer = requests.post(url + request.path, data=request.body, headers=request.headers, timeout=15)
    assert answer.status_code == 200, answer.text


def _follow(url: str, settings: Settings, openid: str, store: str, at: datetime, now: datetime) -> None:
    xml = callbacks.oa_event(openid, "subscribe", int(at.timestamp()), f"qrscene_st={store}&ch=poster")
    _post(url, callbacks.oa_post(settings, xml, now))


def _pos(url: str, settings: Settings, kind: str, openid: str, at: datetime, now: datetime, **fields) -> None:
    payload = {"type": kind, "openid": openid, "at": at.isoformat(), **fields}
    _post(url, callbacks.order_post(settings, payload, now))


def _text(url: str, settings: Settings, openid: str, at: datetime, now: datetime, msg_id: int) -> None:
    _post(url, callbacks.oa_post(settings, callbacks.oa_text(openid, "你好", int(at.timestamp()), msg_id), now))


def seed(url: str, settings: Settings, now: datetime, days: int = 14) -> Chain:
    """Per day: new followers in S001 and S002, orders by some of them, a repeat order and a
    message from yesterday's first follower (day-one retention), an NPS answer, now and then an
    unfollow; today a one-star review in S001 (its ticket is open)."""
    members: dict[str, str] = {}
    for back in range(days, 0, -1):
        day = now - timedelta(days=back)
        if back < days:
            yesterdays = f"oShopperS001-{back + 1}-0" if back + 1 != days else "oShopperS001-0"
            _text(url, settings, yesterdays, day + timedelta(minutes=1), now, 9000 + back)
            _pos(
                url,
                settings,
                "order_paid",
                yesterdays,
                day + timedelta(minutes=2),
                now,
                order_id=f"O-again-{back}",
                amount_fen=3200,
                store_id="S001",
            )
        if back % 4 == 0:
            xml = callbacks.oa_event(
                f"oShopperS002-{back}-0", "unsubscribe", int((day + timedelta(hours=3)).timestamp())
            )
            _post(url, callbacks.oa_post(settings, xml, now))
        for store, count in (("S001", 2 + back % 3), ("S002", 1 + (back // 5) % 3)):
            for k in range(count):
                openid = f"oShopper{store}-{back}-{k}" if (back, k) != (days, 0) else f"oShopper{store}-0"
                _follow(url, settings, openid, store, day, now)
                members[openid] = store
                if k % 2 == 0:
                    amount = 1800 + 400 * ((back + k) % 5)
                    order = f"O-{store}-{back}-{k}"
                    _pos(
                        url,
                        settings,
                        "order_paid",
                        openid,
                        day + timedelta(minutes=5),
                        now,
                        order_id=order,
                        amount_fen=amount,
                        store_id=store,
                    )
        _pos(
            url,
            settings,
            "nps",
            f"oShopperS001-{back}-0" if back != days else "oShopperS001-0",
            day + timedelta(minutes=9),
            now,
            answer_id=f"N-{back}",
            score=9 if back % 3 else 5,
            store_id="S001",
        )
    _follow(url, settings, REVIEWER, "S001", now - timedelta(hours=2), now)
    members[REVIEWER] = "S001"
    _pos(
        url,
        settings,
        "review",
        REVIEWER,
        now - timedelta(minutes=30),
        now,
        review_id=REVIEW_ID,
        score=1,
        store_id="S001",
    )
    return Chain(members, REVIEW_ID)
