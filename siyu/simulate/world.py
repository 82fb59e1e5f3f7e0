"""A synthetic chain and its members' habits (pure: the same seed gives the same world).

Members are official-account followers (``oSim…``) or store-group members added through WeCom
(``wmSim…``). One in four also arrives later on the other channel (a second id), and two in
five order through the mini program under a third id (``oMpSim…``) whose order webhook carries
the person's UnionID only from some day on (the member logged in later); the fake WeChat knows
the UnionID of every official-account and WeCom id, so siyu can learn that these ids are one
person (docs/identity.md). Each has a home store, an arrival moment, a habit (regular,
occasional, once) that sets how often they order, and maybe a day they lapse (stop coming). A
lapsed member may come back by themselves, and more often when a recall message reached them:
that difference is the lift the recall report should find against its holdout. Every random
draw comes from a generator seeded by ``(seed, member, purpose)``, so one member's life does not
depend on the others'.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
__all__ = ["UTC", "ZONE"]
STORE_NAMES = ["静安寺店", "徐家汇店", "天河城店", "五角场店", "陆家嘴店", "春熙路店", "西湖店", "解放碑店", "南京路店"]
CATEGORIES = ["milk_tea", "fruit_tea", "coffee"]
HABITS = {"regular": 1.0, "occasional": 0.3, "once": 0.0}  # orders a week while active
TEXTS = ["你好", "今天营业到几点？", "有什么新品", "谢谢"]
REVIEW_SCORES = [5, 5, 5, 5, 5, 4, 4, 4, 3, 2, 1]  # ≈ 18 % negative (≤ 2 stars)
# The subscribe templates the simulation's popups offer (rules/messaging.json): a follower who
# accepts grants siyu one send of it (docs/wechat.md §3.4).
SUBSCRIBE_TEMPLATES = ("SUB-COUPON-NOTICE", "SUB-MEMBER-NOTICE")
POPUP_ACCEPTERS = 0.4  # followers who accept the popup when it shows (the others reject it)
POPUP_DAILY = 0.1  # a follower's chance, on an active day, that the popup shows (on the order page)
TEMPLATE_BLOCKERS = 0.05  # followers who block the account's template messages


def rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


@dataclass(frozen=True)
class Store:
    id: str
    name: str
    group: str  # the store's customer group (WeCom chat id)
    respond_minutes: int  # how long its staff typically take to answer a negative review


@dataclass
class Persona:
    member_id: str
    channel: str  # oa | group
    store: Store
    arrives: datetime
    habit: str
    category: str  # favourite
    checks_in: bool
    reviews: bool
    birthday: str | None
    lapses_on: date | None  # stops coming from this local day
    unfollows_on: date | None
    returns_on: date | None = None  # comes back (by themselves or after a recall)
    unionid: str = ""  # the person's UnionID, the same for every id of theirs
    second_id: str | None = None  # an id on the other channel (group for a follower, and back)
    second_on: date | None = None  # the day they arrive there
    mp_id: str | None = None  # the mini program's openid: their orders come from it
    unionid_from: date | None = None  # the mini program's order webhook sends the UnionID from this day

    @property
    def ids(self) -> list[str]:
        return [i for i in (self.member_id, self.second_id, self.mp_id) if i]

    def active_on(self, day: date) -> bool:
        if self.arrives.astimezone(ZONE).date() > day:
            return False
        if self.unfollows_on and day >= self.unfollows_on:
            return False
        if self.lapses_on and day >= self.lapses_on:
            return self.returns_on is not None and day >= self.returns_on
        return True


def stores(count: int, seed: int) -> list[Store]:
    """The chain: ``count`` stores; one in three has slow staff (its reviews go late)."""
    return [
        Store(
            f"S{i:03d}",
            STORE_NAMES[(i - 1) % len(STORE_NAMES)] + ("" if i <= len(STORE_NAMES) else str(i)),
            f"wrSim{seed}G{i:03d}",
            150 if i % 3 == 0 else 35,
        )
        for i in range(1, count + 1)
    ]


def members(count: int, chain: list[Store], start: datetime, days: int, seed: int) -> list[Persona]:
    """Arrivals spread over the first four fifths of the run (later ones are new at the end)."""
    people = []
    for i in range(count):
        r = rng(seed, "member", i)
        channel = "oa" if r.random() < 0.7 else "group"
        member_id = f"{'oSim' if channel == 'oa' else 'wmSim'}{seed}x{i:05d}"
        store = chain[min(int(r.random() * len(chain)), len(chain) - 1)]
        arrives = start + timedelta(minutes=r.randrange(0, int(days * 0.8) * 1440))
        arrives = _daytime(arrives, r)
        habit = r.choices(list(HABITS), weights=[35, 40, 25])[0]
        first_day = arrives.astimezone(ZONE).date()
        lapses_on = first_day + timedelta(days=r.randint(3, 12)) if habit != "once" and r.random() < 0.45 else None
        if habit == "once":
            lapses_on = first_day + timedelta(days=r.randint(1, 3))
        unfollows = channel == "oa" and r.random() < 0.04
        people.append(
            Persona(
                member_id,
                channel,
                store,
                arrives,
                habit,
                r.choice(CATEGORIES),
                checks_in=r.random() < 0.06,
                reviews=r.random() < 0.35,
                birthday=f"{r.randint(1, 12):02d}-{r.randint(1, 28):02d}" if r.random() < 0.15 else None,
                lapses_on=lapses_on,
                unfollows_on=first_day + timedelta(days=r.randint(2, 20)) if unfollows else None,
            )
        )
        _identities(people[-1], i, seed, start, days)
    return people


def _identities(person: Persona, i: int, seed: int, start: datetime, days: int) -> None:
    """The person's other ids (their own random stream: the rest of their life is unchanged)."""
    r = rng(seed, "identity", i)
    person.unionid = f"uSim{seed}x{i:05d}"
    first_day = person.arrives.astimezone(ZONE).date()
    last_day = start.astimezone(ZONE).date() + timedelta(days=days - 1)
    if r.random() < 0.25:
        other = "group" if person.channel == "oa" else "oa"
        person.second_id = f"{'oSim' if other == 'oa' else 'wmSim'}{seed}x{i:05d}b"
        person.second_on = min(first_day + timedelta(days=r.randint(1, 10)), last_day)
    if r.random() < 0.4:
        person.mp_id = f"oMpSim{seed}x{i:05d}"
        person.unionid_from = min(first_day + timedelta(days=r.choice([0, 0, 2, 7])), last_day)


def _daytime(at: datetime, r: random.Random) -> datetime:
    """Move a moment into opening hours (08:00–21:30 local), keeping its day."""
    local = at.astimezone(ZONE)
    if 8 <= local.hour < 21:
        return at
    minute = r.randrange(8 * 60, 21 * 60 + 30)
    return datetime.combine(local.date(), time(minute // 60, minute % 60), ZONE)


@dataclass(frozen=True)
class Planned:
    at: datetime
    member: Persona
    # arrive | arrive_second | order | review | nps | checkin | text | refund | birthday | unfollow | popup
    kind: str
    detail: dict = field(default_factory=dict)


def day_plan(person: Persona, day: date, seed: int) -> list[Planned]:
    """What one member does on one local day, given what happened to them so far."""
    r = rng(seed, person.member_id, day.isoformat())
    plan: list[Planned] = []
    if person.arrives.astimezone(ZONE).date() == day:
        plan.append(Planned(person.arrives, person, "arrive"))
        if person.birthday:
            plan.append(Planned(person.arrives + timedelta(minutes=20), person, "birthday"))
    if person.unfollows_on == day:
        plan.append(Planned(_at(day, r), person, "unfollow"))
    if person.second_on == day:
        plan.append(
            Planned(max(_at(day, rng(seed, person.member_id, "second")), person.arrives), person, "arrive_second")
        )
    if not person.active_on(day):
        return plan
    base = person.arrives + timedelta(minutes=5) if person.arrives.astimezone(ZONE).date() == day else None
    rate = HABITS[person.habit] / 7
    first_order = person.habit == "once" and base is not None
    if person.returns_on == day or first_order or r.random() < rate:
        when = max(_at(day, r), base) if base else _at(day, r)
        plan.append(Planned(when, person, "order", {"returning": person.returns_on == day}))
    if person.checks_in and r.random() < 0.6:
        plan.append(Planned(max(_at(day, r), base or datetime.min.replace(tzinfo=ZONE)), person, "checkin"))
    if person.channel == "oa" and r.random() < 0.02:
        plan.append(Planned(max(_at(day, r), base or datetime.min.replace(tzinfo=ZONE)), person, "text"))
    return plan + _popup(person, day, base, seed)


def _popup(person: Persona, day: date, base: datetime | None, seed: int) -> list[Planned]:
    """A follower answers the subscribe-message popup now and then (their own random stream: the
    rest of their life is unchanged); some always accept, the others reject."""
    if person.channel != "oa":
        return []
    r = rng(seed, person.member_id, "popup", day.isoformat())
    if r.random() >= POPUP_DAILY:
        return []
    accept = rng(seed, person.member_id, "popup").random() < POPUP_ACCEPTERS
    at = max(_at(day, r), base or datetime.min.replace(tzinfo=ZONE))
    template = SUBSCRIBE_TEMPLATES[r.randrange(len(SUBSCRIBE_TEMPLATES))]
    return [Planned(at, person, "popup", {"template_id": template, "accept": accept})]


def blocks_templates(person: Persona, seed: int) -> bool:
    """Whether this follower blocks template messages (WeChat's receipts then say so)."""
    return person.channel == "oa" and rng(seed, person.member_id, "blocks").random() < TEMPLATE_BLOCKERS


def _at(day: date, r: random.Random) -> datetime:
    minute = r.randrange(8 * 60, 21 * 60 + 30)
    return datetime.combine(day, time(minute // 60, minute % 60), ZONE)


def review_score(person: Persona, order_id: str, seed: int) -> int:
    return rng(seed, "review", order_id).choice(REVIEW_SCORES)


def maybe_return(person: Persona, today: date, recalled: bool, seed: int) -> date | None:
    """A lapsed member's decision, taken once per lapse check: recall messages double the odds."""
    r = rng(seed, person.member_id, "return", today.isoformat(), recalled)
    chance = 0.35 if recalled else 0.12
    return today + timedelta(days=r.randint(1, 4)) if r.random() < chance else None


def after_order(person: Persona, at: datetime, seed: int, order: dict) -> list[Planned]:
    """What may follow an order: a review (some members review half their orders), an NPS
    answer, a refund."""
    r = rng(seed, "after", order["order_id"])
    plan = []
    if person.reviews and r.random() < 0.5:
        plan.append(Planned(at + timedelta(minutes=r.randint(10, 90)), person, "review", order))
    if r.random() < 0.05:
        plan.append(Planned(at + timedelta(minutes=r.randint(30, 120)), person, "nps", order))
    if r.random() < 0.03:
        plan.append(Planned(at + timedelta(hours=r.randint(1, 5)), person, "refund", order))
    return plan


def staff_work(store: Store, review_id: str, at: datetime, seed: int) -> list[Planned]:
    """A store's staff on a negative review: respond after about ``respond_minutes``, resolve
    within a day or so (slow stores later), follow up around 72 h (not always)."""
    r = rng(seed, "staff", review_id)
    respond = at + timedelta(minutes=max(5, int(r.expovariate(1 / store.respond_minutes))))
    resolve = respond + timedelta(hours=r.uniform(2, 30 if store.respond_minutes > 60 else 18))
    staff = Persona(f"staff-{store.id}", "staff", store, at, "once", "", False, False, None, None, None)
    detail = {"ticket": review_id, "by": f"{store.name}店长"}
    plan = [
        Planned(respond, staff, "staff:respond", detail),
        Planned(resolve, staff, "staff:resolve", detail),
    ]
    if r.random() < 0.8:
        plan.append(Planned(at + timedelta(hours=72 + r.uniform(0, 6)), staff, "staff:follow_up", detail))
    return plan
