// 差评工单: the queue by deadline; respond / resolve / follow up, recorded as the admin API does.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { STATUS, STEP, when } from "../format.js";
import { Status, useApi } from "../hooks.jsx";

const ACTIONS = [
  { action: "respond", label: "记录响应", from: ["open"] },
  { action: "resolve", label: "标记已处理", from: ["open", "responded"] },
  { action: "follow_up", label: "完成回访", from: ["open", "responded", "resolved"] },
];

function Ticket({ ticket, me, onDone }) {
  const [note, setNote] = useState("");
  const [by, setBy] = useState("");
  const [message, setMessage] = useState("");
  const act = async (action) => {
    try {
      const answer = await api(`tickets/${encodeURIComponent(ticket.ticket_id)}`, {
        method: "POST",
        body: { action, note: note || null, by: by || undefined },
      });
      onDone(`工单 ${ticket.ticket_id} 已记录：${STATUS[answer.status]}`);
    } catch (e) {
      setMessage(e.message);
    }
  };
  const next = ticket.next_step;
  const overdue = next && new Date(next.at) < new Date();
  return (
    <div class="card ticket" data-ticket={ticket.ticket_id}>
      <div class="row">
        <b>{ticket.ticket_id}</b>
        <span class="badge">{STATUS[ticket.status]}</span>
        <span>{"★".repeat(ticket.score)}</span>
        <span class="muted">{ticket.store_name}</span>
      </div>
      <div class="small">
        评价时间 {when(ticket.opened_at)}
        {ticket.order_id && ` · 订单 ${ticket.order_id}`}
        {ticket.handled_by && ` · 处理人 ${ticket.handled_by}`}
      </div>
      <div class={`small ${overdue ? "late" : ""}`}>
        {next ? `下一步：${STEP[next.step]}，截止 ${when(next.at)}${overdue ? "（已超时）" : ""}` : "没有待办步骤"}
        {ticket.steps_taken.length > 0 && ` · 已触发：${ticket.steps_taken.map((s) => STEP[s]).join("、")}`}
      </div>
      <div class="row">
        <input placeholder="处理人（默认当前登录）" value={by} onInput={(e) => setBy(e.currentTarget.value)} name="by" />
        <input placeholder="备注（可选）" value={note} onInput={(e) => setNote(e.currentTarget.value)} name="note" />
      </div>
      <div class="row">
        {ACTIONS.filter((a) => a.from.includes(ticket.status)).map((a) => (
          <button onClick={() => act(a.action)} data-action={a.action} key={a.action}>
            {a.label}
          </button>
        ))}
      </div>
      {message && (
        <p class="small" role="status">
          {message}
        </p>
      )}
    </div>
  );
}

export function Tickets({ me }) {
  const state = useApi("tickets");
  const [last, setLast] = useState("");
  const done = (text) => {
    setLast(text);
    state.reload();
  };
  const data = state.data;
  return (
    <div>
      <Status state={state} />
      {last && (
        <p class="notice" role="status">
          {last}
        </p>
      )}
      {data && (
        <>
          <p class="small muted">
            时限：{data.sla.respond_minutes}分钟内响应 · {data.sla.resolve_hours}小时内处理 · {data.sla.follow_up_hours}
            小时回访（从顾客写下评价起计）。按截止时间排序。
          </p>
          {data.tickets.length === 0 && <p class="muted">没有待处理的差评工单。</p>}
          {data.tickets.map((t) => (
            <Ticket ticket={t} me={me} onDone={done} key={t.ticket_id} />
          ))}
        </>
      )}
    </div>
  );
}
