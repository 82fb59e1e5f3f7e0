"""Referral: spend unlocks the invite link; a new follower through it counts once, after the
grace period, never for oneself or a member seen before; rewards at 1 and 3 invites."""

from datetime import timedelta

from chalicelib import jobs, runtime
from chalicelib.state.models import Coupon, LoyaltyRecord, Member, OutboxMessage
from siyu.local import callbacks
from tests.helpers import pos, send


def unix(clock) -> int:
    return int(clock.now().timestamp())


def follow(client, aws, clock, openid: str, inviter: str | None):
    key = f"qrscene_st=S001&ch=invite&inv={inviter}" if inviter else ""
    xml = callbacks.oa_event(openid, "subscribe", unix(clock), key)
    assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200


def unfollow(client, aws, clock, openid: str):
    xml = callbacks.oa_event(openid, "unsubscribe", unix(clock))
    assert send(client, callbacks.oa_post(aws, xml, clock.now())).status_code == 200


def pay(client, aws, clock, openid: str, order_id: str, amount_fen: int):
    assert pos(client, aws, clock, "order_paid", openid, order_id=order_id, amount_fen=amount_fen).status_code == 200


def unlocked_inviter(client, aws, clock, openid: str = "oInviter") -> str:
    follow(client, aws, clock, openid, None)
    pay(client, aws, clock, openid, f"{openid}-O1", 20_000)
    return openid


def referral_coupons(member_id: str) -> list[Coupon]:
    return [c for c in Coupon.by_member.query(member_id) if c.cause == "referral"]


def after_grace(clock) -> None:
    clock.advance(timedelta(days=9))
    jobs.run_loyalty_day()


def test_spending_200_yuan_unlocks_the_invite_link_once(client, aws, clock):
    follow(client, aws, clock, "oU1", None)
    pay(client, aws, clock, "oU1", "U1-O1", 15_000)
    assert Member.get("oU1").invite_unlocked_at is None
    pay(client, aws, clock, "oU1", "U1-O2", 5_000)
    pay(client, aws, clock, "oU1", "U1-O3", 5_000)
    assert Member.get("oU1").invite_unlocked_at is not None
    [message] = [m for m in OutboxMessage.by_member.query("oU1") if m.cause == "referral"]
    assert "https://example.com/siyu/invite?inv=oU1" in message.text


def test_a_new_follower_counts_after_the_grace_period_and_the_inviter_is_rewarded_once(client, aws, clock):
    inviter = unlocked_inviter(client, aws, clock)
    follow(client, aws, clock, "oFriend1", inviter)
    follow(client, aws, clock, "oFriend1", inviter)  # WeChat's retry
    assert LoyaltyRecord.get("invitee#oFriend1", "-").status == "pending"
    jobs.run_loyalty_day()
    assert referral_coupons(inviter) == []  # not before the grace period is over
    after_grace(clock)
    jobs.run_loyalty_day()
    [coupon] = referral_coupons(inviter)
    assert coupon.value_fen == 500 and LoyaltyRecord.get(f"inviter#{inviter}", "count").number == 1
    messages = [m for m in OutboxMessage.by_member.query(inviter) if m.message_key.startswith("referral#")]
    assert len(messages) == 1 and "邀请1位好友" in messages[0].text


def test_an_invitee_who_unfollows_within_the_grace_period_does_not_count(client, aws, clock):
    inviter = unlocked_inviter(client, aws, clock)
    follow(client, aws, clock, "oFickle", inviter)
    clock.advance(timedelta(days=2))
    unfollow(client, aws, clock, "oFickle")
    clock.advance(timedelta(days=1))
    follow(client, aws, clock, "oFickle", inviter)  # back, but no longer new
    after_grace(clock)
    assert LoyaltyRecord.get("invitee#oFickle", "-").status == "void"
    assert referral_coupons(inviter) == []


def test_self_invites_existing_members_and_locked_inviters_never_count(client, aws, clock):
    inviter = unlocked_inviter(client, aws, clock)
    follow(client, aws, clock, "oOld", None)
    unfollow(client, aws, clock, "oOld")
    clock.advance(timedelta(minutes=5))
    follow(client, aws, clock, "oOld", inviter)  # a returning member
    follow(client, aws, clock, "oSelf", "oSelf")
    follow(client, aws, clock, "oLocked", None)
    follow(client, aws, clock, "oFriendOfLocked", "oLocked")  # oLocked has not spent 200 yuan
    follow(client, aws, clock, "oFriendOfNobody", "oNoSuchMember")
    for invitee in ("oOld", "oSelf", "oFriendOfLocked", "oFriendOfNobody"):
        assert list(LoyaltyRecord.query(f"invitee#{invitee}")) == []


def test_the_third_invite_earns_the_free_order_and_each_invitee_counts_for_one_inviter(client, aws, clock):
    inviter = unlocked_inviter(client, aws, clock)
    other = unlocked_inviter(client, aws, clock, "oOtherInviter")
    for friend in ("oF1", "oF2", "oF3"):
        follow(client, aws, clock, friend, inviter)
    follow(client, aws, clock, "oF1", other)  # already invited (and not new any more)
    after_grace(clock)
    titles = sorted(c.title for c in referral_coupons(inviter))
    assert titles == ["免单券", "邀请好友券"] and referral_coupons(other) == []
    assert LoyaltyRecord.get(f"inviter#{inviter}", "count").number == 3
    jobs.run_loyalty_day()  # again: nothing more
    assert len(referral_coupons(inviter)) == 2


def test_an_invitee_who_turns_out_to_be_a_customer_from_another_channel_does_not_count(client, aws, clock):
    """A "new friend" is a new person: the mini program knew her before she followed (issue 17)."""
    from chalicelib.identity import work

    inviter = unlocked_inviter(client, aws, clock)
    pos(client, aws, clock, "order_paid", "oMpOld", order_id="OLD-1", amount_fen=3000, unionid="uOld")
    clock.advance(timedelta(days=1))
    follow(client, aws, clock, "oOldFriend", inviter)  # WeChat's follow names no UnionID: pending
    assert LoyaltyRecord.get("invitee#oOldFriend", "-").status == "pending"
    assert work.learn(runtime.context(), "oOldFriend", "uOld", clock.now()) == "merged"
    after_grace(clock)
    assert LoyaltyRecord.get("invitee#oOldFriend", "-").status == "void"
    assert referral_coupons(inviter) == []
