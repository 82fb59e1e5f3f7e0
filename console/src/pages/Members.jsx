// 会员: search by member id or coupon code; one member's profile, points statement, coupons,
// messages and their delivery, recall history, tickets; erase with a confirmation (ops only).
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { CAUSE, CHANNEL, STATUS, label, when, yuan } from "../format.js";
import { Status, useApi } from "../hooks.jsx";
import { Table } from "../table.jsx";

function Search() {
  const [q, setQ] = useState("");
  const [result, setResult] = useState(null);
  const [error, setError] = useState("");
  const submit = async (event) => {
    event.preventDefault();
    try {
      const found = await api(`members?q=${encodeURIComponent(q.trim())}`);
      setError("");
      if (found.members.length === 1) location.hash = `#/members/${encodeURIComponent(found.members[0].member_id)}`;
      setResult(found);
    } catch (e) {
      setError(e.message);
    }
  };
  return (
    <section class="card">
      <form class="row" onSubmit={submit}>
        <input
          name="q"
          value={q}
          onInput={(e) => setQ(e.currentTarget.value)}
          placeholder="会员 ID（openid / external_userid）或券码"
          aria-label="搜索会员"
        />
        <button type="submit" class="primary">
          搜索
        </button>
      </form>
      <p class="small muted">siyu 不保存手机号，因此不能按手机号（或其哈希）搜索。</p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {result && result.members.length === 0 && <p class="muted">没有找到（或不在你的门店）。</p>}
      {result && result.members.length > 1 && (
        <ul>
          {result.members.map((m) => (
            <li key={m.member_id + m.matched}>
              <a href={`#/members/${encodeURIComponent(m.member_id)}`}>{m.member_id}</a>（按
              {m.matched === "coupon_code" ? "券码" : "会员 ID"}找到，{m.store_id || "门店未知"}）
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Erase({ member, onErased }) {
  const [open, setOpen] = useState(false);
  const [typed, setTyped] = useState("");
  const [message, setMessage] = useState("");
  const run = async () => {
    try {
      let answer = await api(`members/${encodeURIComponent(member.member_id)}/erase`, {
        method: "POST",
        body: { confirm: typed },
      });
      while (answer.httpStatus === 202) {
        answer = await api(`members/${encodeURIComponent(member.member_id)}/erase`, { method: "POST", body: { confirm: typed } });
      }
      onErased(answer);
    } catch (e) {
      setMessage(e.message);
    }
  };
  if (!open)
    return (
      <button class="danger" onClick={() => setOpen(true)}>
        删除该会员的个人数据
      </button>
    );
  return (
    <div class="confirm" role="dialog" aria-label="确认删除">
      <p>
        将删除 <b>{member.member_id}</b> 的个人数据（资料、消息、打卡等），积分与券记录改为假名保留。此操作不可撤销。
      </p>
      <label>
        请输入会员 ID 确认：
        <input name="confirm" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button class="danger" disabled={typed !== member.member_id} onClick={run}>
          确认删除
        </button>
        <button onClick={() => setOpen(false)}>取消</button>
      </div>
      {message && <p class="error">{message}</p>}
    </div>
  );
}

function Profile({ id, me }) {
  const state = useApi(`members/${encodeURIComponent(id)}`);
  const [erased, setErased] = useState(null);
  const m = state.data;
  if (erased)
    return (
      <section class="card" role="status">
        <h2>已删除</h2>
        <p>
          会员个人数据已删除，记录以假名 <code>{erased.pseudonym}</code> 保留（审计日志已记录）。
        </p>
      </section>
    );
  return (
    <div>
      <Status state={state} />
      {m && (
        <>
          <section class="card">
            <h2 data-test="member-id">{m.member_id}</h2>
            <div class="facts">
              <div>门店：{m.store_name || "未知"}</div>
              <div>来源：{m.origin || "—"} · 渠道：{m.channel || "—"}</div>
              <div>关注公众号：{m.subscribed ? "是" : "否"}</div>
              <div>首次出现：{when(m.first_seen)}</div>
              <div>最近活跃：{when(m.last_active)}</div>
              <div>
                等级：{m.loyalty.tier || "普通"} · 积分 <b>{m.points.balance}</b>
              </div>
              <div>标签：{m.loyalty.tags.join("、") || "—"}</div>
              <div data-test="member-segments">
                分群：{m.segments.segments.join("、") || "—"}
                {m.segments.tags.length > 0 && ` · 分群标签：${m.segments.tags.join("、")}`}
              </div>
              <div>社群：{m.groups.length} 个</div>
            </div>
            {me.can_erase && <Erase member={m} onErased={setErased} />}
          </section>
          <section class="card">
            <h2>积分明细</h2>
            <Table
              rows={m.points.entries}
              cols={[
                ["时间", (e) => when(e.at)],
                ["变动", (e) => (e.delta > 0 ? `+${e.delta}` : e.delta)],
                ["余额", (e) => e.balance_after],
                ["原因", (e) => label(CAUSE, e.cause)],
                ["过期", (e) => e.expires_on || "—"],
              ]}
              empty="没有积分记录。"
            />
          </section>
          <section class="card">
            <h2>优惠券</h2>
            <Table
              rows={m.coupons}
              cols={[
                ["券码", (c) => <code>{c.code}</code>],
                ["名称", (c) => c.title],
                ["面值", (c) => yuan(c.value_fen)],
                ["来源", (c) => label(CAUSE, c.cause)],
                ["状态", (c) => STATUS[c.status] || c.status],
                ["有效期至", (c) => when(c.expires_at)],
              ]}
              empty="没有优惠券。"
            />
          </section>
          <section class="card">
            <h2>消息与送达</h2>
            <Table
              rows={m.messages}
              cols={[
                ["时间", (x) => when(x.created_at)],
                ["渠道", (x) => label(CHANNEL, x.channel)],
                ["原因", (x) => label(CAUSE, x.cause)],
                ["状态", (x) => STATUS[x.status] || x.status],
                ["送达回执", (x) => x.delivery || "—"],
                ["说明", (x) => x.reason || ""],
              ]}
              empty="没有消息。"
            />
          </section>
          <section class="card">
            <h2>召回记录</h2>
            <Table
              rows={m.recalls}
              cols={[
                ["日期", (r) => r.day],
                ["阶段", (r) => r.stage],
                ["分组", (r) => STATUS[r.arm] || r.arm],
                ["原因", (r) => r.reason || ""],
                ["回流", (r) => when(r.returned_at)],
                ["核销", (r) => when(r.redeemed_at)],
              ]}
              empty="没有召回记录。"
            />
          </section>
          <section class="card">
            <h2>差评工单</h2>
            <Table
              rows={m.tickets}
              cols={[
                ["工单", (t) => t.ticket_id],
                ["星级", (t) => t.score],
                ["状态", (t) => STATUS[t.status]],
                ["评价时间", (t) => when(t.opened_at)],
              ]}
              empty="没有差评工单。"
            />
          </section>
        </>
      )}
    </div>
  );
}

export function Members({ me, args }) {
  return (
    <div>
      <Search />
      {args[0] && <Profile id={args[0]} me={me} key={args[0]} />}
    </div>
  );
}

