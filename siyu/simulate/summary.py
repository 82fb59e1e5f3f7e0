"""The end of a simulation: what siyu did, read from its tables, and the invariants it must keep.

Invariants (each ``{"ok": bool, "detail": str}``):

- ``one_welcome_coupon``: every person who arrived holds exactly one welcome coupon (voided ones
  aside), over all the ids they used;
- ``one_person``: the ids of a person that siyu could learn are theirs (every official-account
  and WeCom id, whose UnionID WeChat gives; a mini-program id once an order carried it) are one
  person, and every coupon the person holds is redeemable from each of those ids;
- ``points_audit``: every points balance equals the sum of its ledger entries;
- ``caps``: no member received more promotional or service messages in a local day or ISO week
  than messaging.json's caps allow;
- ``nothing_lost``: every webhook was answered (no 5xx after WeChat's three tries) and every
  event record is done;
- ``one_ticket_per_negative_review``: each review at or below the threshold has one ticket;
- ``coupon_once``: by siyu's own event records, no coupon is redeemed more often than its
  redemptions were voided plus one, and every redeemed coupon is held by the one event that says so;
- ``stock_kept``: no catalog item redeemed more often than its stock, chain-wide or at a store;
- ``till_terms``: no coupon a till redeemed was expired, not yet valid, of another store or
  below its minimum spend at the moment and for the basket of that redemption;
- ``no_window_drops``: no member message ends ``dropped`` for the customer-service window (a
  reason of siyu's sender naming the window) when its kind has a fallback: a message of that
  cause went out on another channel than ``custom`` in the run, or messaging.json's ``kinds``
  plans more than one channel for it.

Delivery per message kind (the outbox message's ``cause``), of messages to members (not to the
staff's robots or to groups): intended, sent (WeChat accepted it), delivered (WeChat's receipt
said success, for template and subscribe messages; for the channels WeChat sends no receipt of —
customer service, WeCom, the mini program, a passive reply — its acceptance), dropped by reason,
and the delivery rate, delivered / intended.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import ledger
from chalicelib.delivery import sender
from chalicelib.events import robot_of
from chalicelib.metrics import digest
from chalicelib.recall import report
from chalicelib.state.models import Alert, Coupon, EventRecord, OutboxMessage, Ticket
from siyu.simulate import experiment

if TYPE_CHECKING:
    from siyu.simulate.driver import Simulation


def collect(sim: Simulation) -> dict[str, Any]:
    from chalicelib import runtime

    ctx = runtime.context()
    rules, now = ctx.rules(), ctx.clock.now()
    zone = rules.stores.zone_of(None)
    arrived = [p for p in sim.people if p.arrives < now]
    coupons = list(Coupon.scan())
    messages = list(OutboxMessage.scan())
    events = list(EventRecord.scan())
    tickets = list(Ticket.scan())
    alerts = list(Alert.scan())
    checked, differences = ledger.audit()
    today = now.astimezone(zone).date()
    recall_rows = [
        r.as_dict(rules.recall.min_sample)
        for r in report.summarize(report.records(today - timedelta(days=sim.days), today), now)
        if r.store == report.ALL
    ]
    last_monday = today - timedelta(days=today.weekday() + 7)
    built = digest.build(rules, last_monday, now)
    invariants = {
        "one_welcome_coupon": _one_welcome(sim, arrived, coupons),
        "one_person": _one_person(sim, arrived, coupons),
        "points_audit": {
            "ok": not differences,
            "detail": f"{checked} balances checked, {len(differences)} differ",
        },
        "caps": _caps(messages, rules, zone),
        "nothing_lost": _nothing_lost(sim, events),
        "one_ticket_per_negative_review": _tickets(events, tickets, rules.alerts.reviews.max_score),
        "coupon_once": _coupon_once(events, coupons),
        "till_terms": _till_terms(events, coupons),
        "stock_kept": _stock_kept(rules),
        "no_window_drops": _no_window_drops(messages, rules.messaging),
        "calendar_slots": calendar_pushes(messages, rules, zone, sim.run_days()),
    }
    return {
        "seed": sim.seed,
        "stores": len(sim.chain),
        "days": sim.days,
        "members": {
            "arrived": len(arrived),
            "followers": sum(p.channel == "oa" for p in arrived),
            "group_members": sum(p.channel == "group" for p in arrived),
        },
        "identity": _identity(sim, arrived),
        "events_sent": dict(sorted(sim.tally.sent.items())),
        "http": {str(k): v for k, v in sorted(sim.tally.statuses.items())},
        "retried_deliveries": sim.tally.retried,
        "coupons_issued": dict(sorted(Counter(c.cause for c in coupons).items())),
        "coupons_redeemed": dict(sorted(Counter(c.cause for c in coupons if c.status == "redeemed").items())),
        "till": dict(sorted(sim.tally.till.items())),
        "recall": recall_rows,
        "members_back": dict(sim.tally.returns),
        "alerts": {
            "opened": len(alerts),
            "open_now": sum(a.status == "open" for a in alerts),
            "escalations": sum(int(a.escalations) for a in alerts),
            "closed": sum(a.status == "closed" for a in alerts),
        },
        "tickets": {
            "opened": len(tickets),
            "late": sum("late" in (t.steps or ()) for t in tickets),
            "escalated": sum("escalated" in (t.steps or ()) for t in tickets),
            "closed": sum(t.status == "closed" for t in tickets),
        },
        "messages_by_state": dict(sorted(Counter(m.status for m in messages).items())),
        "wechat_calls": dict(sorted(sim.tally.wechat_received.items())),
        "wechat_refusals": sim.stack.wechat.refusals(),
        "receipts_posted": sim.tally.receipts,
        "delivery": delivery(messages),
        "points_audit": {"balances": checked, "differences": len(differences)},
        "staff_actions": dict(sorted(sim.tally.staff.items())),
        "calendar": invariants["calendar_slots"]["sent"],
        "experiment": experiment.result(sim, sim.experiment_runs),
        "digest_week": built.week,
        "digest": built.markdown,
        "invariants": invariants,
    }


RECEIPTED = ("template", "subscribe")  # the channels WeChat later reports a delivery of (§1.3)
NOT_TO_MEMBERS = ("robot", "wecom_group", "identity")  # staff robots, a customer group, identity work
WAITING = ("pending", "sending", "deferred", "retrying")


def to_members(messages) -> list[OutboxMessage]:
    return [
        m
        for m in messages
        if robot_of(m.member_id) is None and m.channel not in NOT_TO_MEMBERS and m.category != "alert"
    ]


def delivered(m: OutboxMessage) -> bool:
    if m.status == "replied":
        return True
    if m.status != "sent":
        return False
    return m.delivery == "success" if m.sent_channel in RECEIPTED else True


def delivery(messages) -> dict[str, dict[str, Any]]:
    """Per message kind: intended, sent (and on which channels), delivered, dropped by reason,
    what else became of the rest, and the delivery rate (delivered / intended)."""
    rows: dict[str, dict[str, Any]] = {}
    for m in sorted(to_members(messages), key=lambda m: m.cause):
        row = rows.setdefault(
            m.cause,
            {
                "intended": 0,
                "sent": 0,
                "delivered": 0,
                "withdrawn": 0,
                "channels": Counter(),
                "dropped": Counter(),
                "other": Counter(),
            },
        )
        if m.status == "dropped" and sender.drop_class(m.reason or "") in sender.WITHDRAWN:
            row["withdrawn"] += 1  # not one the member should have had (the sender counts it so too)
            continue
        row["intended"] += 1
        if m.status in ("sent", "replied"):
            row["sent"] += 1
            row["channels"][m.sent_channel or m.channel] += 1
            row["delivered"] += delivered(m)
            if not delivered(m):
                row["other"]["receipt " + (m.delivery or "awaited")] += 1
        elif m.status == "dropped":
            row["dropped"][m.reason or "-"] += 1
        else:
            row["other"]["waiting" if m.status in WAITING else m.status] += 1
    for row in rows.values():
        row["rate"] = round(row["delivered"] / row["intended"], 4) if row["intended"] else None
        for name in ("channels", "dropped", "other"):
            row[name] = dict(sorted(row[name].items()))
    return rows


WINDOW_REASONS = ("customer-service window closed", "45015", "45047", "customer-service quota")


def window_dropped(m: OutboxMessage) -> bool:
    """Dropped for the customer-service window alone (as siyu's sender words it: "customer-service
    window closed …", "45015: outside the customer-service window …", "customer-service quota of
    this interaction window used"); a drop naming every route's reason is not the window's."""
    return m.status == "dropped" and (m.reason or "").startswith(WINDOW_REASONS)


def _no_window_drops(messages, messaging: Any) -> dict[str, Any]:
    mine = to_members(messages)
    fallback = {name for name, kind in messaging.kinds.items() if len(kind.channels) > 1}
    fallback |= {m.cause for m in mine if m.status == "sent" and m.sent_channel not in (None, "custom")}
    drops = Counter(m.cause for m in mine if window_dropped(m))
    wrong = {cause: n for cause, n in sorted(drops.items()) if cause in fallback}
    return {
        "ok": not wrong,
        "detail": f"{sum(drops.values())} member messages dropped for the window, "
        f"{sum(wrong.values())} of kinds with a fallback {wrong}",
    }


def _one_welcome(sim: Simulation, arrived, coupons) -> dict[str, Any]:
    welcomes = Counter(c.member_id for c in coupons if c.cause == "welcome" and c.status != "void")
    wrong = [p.member_id for p in arrived if sum(welcomes[i] for i in sim.tally.ids[p.member_id]) != 1]
    voided = sum(c.cause == "welcome" and c.status == "void" for c in coupons)
    return {
        "ok": not wrong,
        "detail": f"{len(arrived) - len(wrong)} of {len(arrived)} persons hold exactly one ({voided} voided by merges)",
    }


def _one_person(sim: Simulation, arrived, coupons) -> dict[str, Any]:
    from chalicelib.duties import redemption
    from chalicelib.identity import merge

    by_owner: dict[str, list[Any]] = {}
    for c in coupons:
        by_owner.setdefault(c.member_id, []).append(c)
    split, unredeemable, checked = [], 0, 0
    for person in arrived:
        ids = sorted(sim.tally.linkable[person.member_id])
        found = {i: merge.current(i) for i in ids}
        persons = {m.member_id for m in found.values() if m is not None}
        if len(persons) > 1:
            split.append(person.member_id)
            continue
        for member in {m.member_id: m for m in found.values() if m is not None}.values():
            owners = redemption.owners_of(member.member_id, member)
            held = [c for owner in sorted(owners) for c in by_owner.get(owner, [])]
            checked += len(held)
            unredeemable += sum(c.member_id not in owners for c in held)
    ok = not split and not unredeemable
    return {
        "ok": ok,
        "detail": f"{len(arrived) - len(split)} of {len(arrived)} persons are one member; "
        f"{checked - unredeemable} of {checked} coupons redeemable from every id",
    }


def _identity(sim: Simulation, arrived) -> dict[str, int]:
    from chalicelib.state.models import Member, Shared
    from chalicelib.store import keys

    rows = list(Member.scan(attributes_to_get=["member_id", "merged_into"]))
    merges = [r for r in Shared.scan() if r.pk.startswith(keys.MERGE)]
    return {
        "persons": len(arrived),
        "platform_ids": sum(len(sim.tally.ids[p.member_id]) for p in arrived),
        "members": sum(not r.merged_into for r in rows),
        "merges": len(merges),
    }


def _caps(messages, rules, zone) -> dict[str, Any]:
    caps = rules.messaging.caps
    per_day: Counter[tuple[str, str, str]] = Counter()
    per_week: Counter[tuple[str, str, str]] = Counter()
    for m in messages:
        if m.status != "sent" or m.category not in ("promo", "service") or m.channel in NOT_TO_MEMBERS:
            continue  # a member's caps; a group's one mass message a day is the calendar's check
        local = m.sent_at.astimezone(zone)
        per_day[(m.member_id, m.category, local.date().isoformat())] += 1
        year, week, _ = local.isocalendar()
        per_week[(m.member_id, m.category, f"{year}-W{week:02d}")] += 1
    over = [k for k, n in per_day.items() if n > caps[k[1]].per_day]
    over += [k for k, n in per_week.items() if n > caps[k[1]].per_week]
    busiest = max(per_day.values(), default=0)
    return {"ok": not over, "detail": f"{len(over)} member-days/weeks over a cap; busiest member-day {busiest}"}


def _nothing_lost(sim: Simulation, events) -> dict[str, Any]:
    states = Counter(e.status for e in events)
    ok = sim.tally.unanswered == 0 and set(states) <= {"done"}
    return {
        "ok": ok,
        "detail": f"{len(events)} events {dict(states)}; {sim.tally.unanswered} deliveries unanswered after 3 tries",
    }


def _tickets(events, tickets, max_score: int) -> dict[str, Any]:

    reviews = [json.loads(e.body)["data"] for e in events if e.kind == "reviewed"]
    negative = {review["review_id"] for review in reviews if int(review["score"]) <= max_score}
    found = {t.ticket_id for t in tickets}
    return {"ok": negative == found, "detail": f"{len(negative)} negative reviews, {len(found)} tickets"}


def _redemptions(events) -> tuple[Counter[str], Counter[str], list[tuple[Any, str]]]:
    """From the event records: per code, the redemptions and the voids siyu answered yes to, and
    each till redemption (its event, the code)."""

    from chalicelib.events import Event

    redeemed: Counter[str] = Counter()
    voided: Counter[str] = Counter()
    at_till = []
    for record in events:
        answer = json.loads(record.answer) if record.answer else {}
        if record.kind == "coupon_voided" and answer.get("voided"):
            voided[answer["code"]] += 1
        for given in answer.get("coupons") or ():
            if given.get("redeemed"):
                redeemed[given["code"]] += 1
                if record.source == "till":
                    at_till.append((Event.from_json(record.body), given["code"]))
    return redeemed, voided, at_till


def _coupon_once(events, coupons) -> dict[str, Any]:
    redeemed, voided, _ = _redemptions(events)
    twice = [code for code, n in redeemed.items() if n > voided[code] + 1]
    held = {c.code: c for c in coupons}
    astray = [
        code for code, n in redeemed.items() if code in held and (n > voided[code]) != (held[code].status == "redeemed")
    ]
    return {
        "ok": not twice and not astray,
        "detail": f"{sum(redeemed.values())} redemptions of {len(redeemed)} coupons, {sum(voided.values())} voided; "
        f"{len(twice)} redeemed twice, {len(astray)} whose state disagrees with the events",
    }


def _stock_kept(rules: Any) -> dict[str, Any]:
    """No catalog item was redeemed more often than its stock (rules/catalog.json), chain-wide or
    at any store; counted from siyu's stock counters."""
    from chalicelib.state.models import LoyaltyRecord
    from chalicelib.store import db, keys

    checked, over = 0, []
    for item in rules.catalog.items:
        stocks = item.stock if isinstance(item.stock, dict) else {None: item.stock}
        for store, stock in stocks.items():
            if stock is None:
                continue
            record = db.get(LoyaltyRecord, *keys.catalog_stock(item.id, store))
            taken = int(record.number or 0) if record is not None else 0
            checked += 1
            if taken > int(stock):
                over.append(f"{item.id}@{store or 'chain'}")
    return {"ok": not over, "detail": f"{checked} stocks checked, {len(over)} oversold {over}"}


def _till_terms(events, coupons) -> dict[str, Any]:
    held = {c.code: c for c in coupons}
    _, _, at_till = _redemptions(events)
    broken = Counter(_broken(held[code], event) for event, code in at_till)
    fine = broken.pop(None, 0)
    return {"ok": not broken, "detail": f"{fine} of {len(at_till)} till redemptions within terms {dict(broken)}"}


def _broken(coupon: Coupon, event) -> str | None:
    """Which of its terms the coupon broke when this till redeemed it (judged here, apart from
    siyu's own judgement in chalicelib/duties/redemption.py)."""
    at = event.occurred_at
    if at >= coupon.expires_at:
        return "expired"
    if at < (coupon.valid_from or coupon.issued_at):
        return "not_yet_valid"
    if coupon.stores and event.store_id not in coupon.stores:
        return "other_store"
    if int(event.data["basket_total_fen"]) < int(coupon.min_spend_fen or 0):
        return "below_minimum"
    return None


def render(result: dict[str, Any]) -> str:
    """The summary as ops read it (the digest first, as the last thing siyu sent them)."""
    lines = [f"## 最近一期周报（{result['digest_week']}）", "", result["digest"], "", "## Simulation summary", ""]
    m = result["members"]
    lines.append(
        f"seed {result['seed']} · {result['stores']} stores · {result['days']} days · "
        f"{m['arrived']} members ({m['followers']} followers, {m['group_members']} group members)"
    )
    i = result["identity"]
    lines.append(
        f"identity:       {i['persons']:,} persons used {i['platform_ids']:,} ids; siyu holds {i['members']:,} members "
        f"after {i['merges']:,} merges"
    )
    lines.append("events sent:    " + _pairs(result["events_sent"]))
    lines.append("HTTP answers:   " + _pairs(result["http"]) + f" (retried deliveries {result['retried_deliveries']})")
    lines.append("coupons issued: " + _pairs(result["coupons_issued"]))
    lines.append("coupons used:   " + _pairs(result["coupons_redeemed"]))
    lines.append("tills:          " + _pairs(result["till"]))
    for row in result["recall"]:
        lift = row["lift"]
        shown = (
            "-"
            if lift is None
            else f"{lift['value'] * 100:+.1f} pts [{lift['low'] * 100:.1f}, {lift['high'] * 100:.1f}]"
        )
        lines.append(
            f"recall {row['stage']:<14} treated {row['treated']:>4} (back {row['returned_treated']:>3}) · "
            f"held out {row['holdout']:>3} (back {row['returned_holdout']:>3}) · "
            f"skipped {row['skipped']:>4} · lift {shown}"
        )
    a, t = result["alerts"], result["tickets"]
    lines.append(
        f"alerts:         opened {a['opened']}, open now {a['open_now']}, escalations {a['escalations']}, "
        f"closed {a['closed']}"
    )
    lines.append(
        f"review tickets: opened {t['opened']}, late {t['late']}, escalated {t['escalated']}, closed {t['closed']}"
    )
    lines.append("messages:       " + _pairs(result["messages_by_state"]))
    lines.append("WeChat calls:   " + _pairs(result["wechat_calls"]))
    refused = {code: sum(paths.values()) for code, paths in result["wechat_refusals"].items()}
    lines.append(
        "WeChat refused: "
        + _pairs(refused)
        + "".join(f" · {code}: {_pairs(paths)}" for code, paths in result["wechat_refusals"].items())
    )
    lines.append(f"receipts:       {result['receipts_posted']:,} posted to siyu")
    lines += ["", *render_delivery(result["delivery"])]
    p = result["points_audit"]
    lines.append(f"points audit:   {p['balances']} balances, {p['differences']} differences")
    lines.append("calendar:       pushes sent " + _pairs(result["calendar"]))
    lines += experiment.render(result["experiment"])
    lines.append("")
    for name, check in result["invariants"].items():
        lines.append(f"{'ok  ' if check['ok'] else 'FAIL'} {name}: {check['detail']}")
    return "\n".join(lines)


def render_delivery(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The delivery table: one line per message kind, then its drops and the rest."""
    lines = [
        "delivery per kind (rate = delivered / intended; withdrawn: second welcomes a merge voided, not intended)",
        f"  {'kind':<20} {'intended':>8} {'sent':>6} {'delivered':>9} {'rate':>7}  sent on · dropped · other",
    ]
    total = Counter[str]()
    for cause, row in rows.items():
        total.update({name: row[name] for name in ("intended", "sent", "delivered")})
        other = {**row["other"], **({"withdrawn": row["withdrawn"]} if row.get("withdrawn") else {})}
        notes = [_pairs(row["channels"]), _pairs(row["dropped"]), _pairs(other)]
        shown = f"{row['rate'] * 100:>6.1f}%" if row["rate"] is not None else f"{'-':>7}"
        lines.append(
            f"  {cause:<20} {row['intended']:>8,} {row['sent']:>6,} {row['delivered']:>9,} {shown}  {' · '.join(notes)}"
        )
    rate = total["delivered"] / total["intended"] * 100 if total["intended"] else 0.0
    lines.append(f"  {'all':<20} {total['intended']:>8,} {total['sent']:>6,} {total['delivered']:>9,} {rate:>6.1f}%")
    return lines


def _pairs(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "-"


def calendar_pushes(messages, rules: Any, zone: Any, days: list[date]) -> dict[str, Any]:
    """The content calendar as the groups lived it: each group's pushes sent per day and slot, and
    whether every group got exactly one push in each slot of every day, inside its messaging.json
    group slot (outside business hours; 003 §2.2.1)."""
    windows = {slot.name: (slot.start, slot.end) for slot in rules.messaging.group_slots}
    slots = [slot.name for slot in rules.campaigns.calendar.slots]
    sent: Counter[tuple[str, str, str]] = Counter()
    by_slot: Counter[str] = Counter()
    outside = []
    for m in messages:
        if not m.message_key.startswith("calendar#") or m.status != "sent" or m.sent_at is None:
            continue
        _, group, day, slot = m.message_key.split("#")
        sent[(group, day, slot)] += 1
        by_slot[slot] += 1
        start, end = windows.get(slot, ("00:00", "00:00"))
        if not start <= f"{m.sent_at.astimezone(zone):%H:%M}" < end:
            outside.append(m.message_key)
    groups = sorted({g for store in rules.stores.stores for g in store.groups})
    expected = [(g, d.isoformat(), s) for g in groups for d in days for s in slots]
    wrong = [key for key in expected if sent[key] != 1]
    ok = not wrong and not outside and sum(sent.values()) == len(expected)
    detail = (
        f"{sum(sent.values())} pushes to {len(groups)} groups over {len(days)} days "
        f"({', '.join(f'{s} {by_slot[s]}' for s in slots)}); "
        f"{len(wrong)} group-slots without exactly one, {len(outside)} outside their slot"
    )
    return {"ok": ok, "detail": detail, "sent": dict(sorted(by_slot.items()))}
