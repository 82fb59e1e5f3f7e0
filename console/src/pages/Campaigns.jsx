// 活动与日历: the week's content calendar per group and slot (`siyu campaigns calendar`) with each
// push's state, the campaigns with their report (`siyu campaigns report`), the segments' sizes
// (`siyu segments`). A store manager sees their stores' groups and segments.
import { useState } from "preact/hooks";
import { STATUS } from "../format.js";
import { Status, useApi } from "../hooks.jsx";
import { Table } from "../table.jsx";

const SLOT = { morning: "早", evening: "晚" };
const CHANNEL = { wecom_group: "客户群群发（群主确认）", staff_post: "店员机器人（人工转发）" };
const WEEKDAY = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

function pushState(p) {
  if (p.source === "MISSING") return <strong class="bad">缺内容</strong>;
  if (p.state === "planned") return <span class="muted">待排入</span>;
  const word = STATUS[p.state] || p.state;
  return p.channel === "wecom_group" && p.state === "sent" ? (p.confirmed ? "群主已发送" : "待群主确认") : word;
}

function weekday(iso) {
  const d = new Date(`${iso}T00:00:00Z`);
  return WEEKDAY[(d.getUTCDay() + 6) % 7];
}

function Calendar({ data }) {
  return (
    <section class="card" data-test="calendar">
      <h2>
        内容日历 {data.week}
        {data.missing ? <span class="bad">（{data.missing} 个时段缺内容）</span> : null}
      </h2>
      {!data.calendar_on && <p class="muted">内容日历未启用（campaigns.json calendar.enabled）。</p>}
      <Table
        rows={data.pushes}
        cols={[
          ["日期", (p) => `${p.day} ${weekday(p.day)}`],
          ["时段", (p) => `${SLOT[p.slot] || p.slot} ${p.at}`],
          ["门店", (p) => p.store_name],
          ["群", (p) => <span class="small">{p.group}</span>],
          ["主题", (p) => p.theme],
          ["渠道", (p) => CHANNEL[p.channel] || p.channel],
          ["内容", (p) => <span class="small">{p.text || "—"}</span>],
          ["状态", pushState],
        ]}
        empty="本周没有群推送：日历未启用，或门店没有客户群。"
      />
    </section>
  );
}

function audienceText(c) {
  if (c.audience.segment) return `分层 ${c.audience.segment}`;
  return c.audience.groups === "all" ? "全部客户群" : `客户群 ${c.audience.groups.join("、")}`;
}

function scheduleText(s) {
  if (s.at) return `定时 ${s.at.replace("T", " ").slice(0, 16)}`;
  if (s.weekly) return `每周 ${s.weekly.weekday} ${s.weekly.at}`;
  return `日历 ${s.calendar.date} ${SLOT[s.calendar.slot] || s.calendar.slot}`;
}

function Campaigns({ rows }) {
  return (
    <section class="card" data-test="campaigns">
      <h2>活动</h2>
      <Table
        rows={rows}
        cols={[
          ["活动", (c) => `${c.title}（${c.name}）`],
          ["受众", audienceText],
          ["时间", (c) => scheduleText(c.schedule)],
          ["状态", (c) => (c.active ? "进行中" : <span class="muted">未生效</span>)],
          ["实验", (c) => c.experiment || "—"],
          ["排入", (c) => c.queued],
          ["已发送", (c) => c.sent],
          ["未发送", (c) => c.dropped],
          ["群主确认", (c) => c.confirmed],
          ["已送达", (c) => c.delivered],
        ]}
        empty="campaigns.json 没有活动。"
      />
    </section>
  );
}

function Segments({ rows, stores }) {
  const ids = Object.keys(stores);
  return (
    <section class="card" data-test="segments">
      <h2>会员分层（人数）</h2>
      <Table
        rows={rows}
        cols={[
          ["分层", (s) => `${s.title}（${s.name}）`],
          ...ids.map((id) => [stores[id], (s) => s.stores[id] ?? 0]),
        ]}
        empty="segments.json 没有分层。"
      />
      <p class="small muted">每天 evaluate_at 之后全量计算一次，之后每 15 分钟更新有变化的会员。</p>
    </section>
  );
}

export function CampaignsPage() {
  const [week, setWeek] = useState("");
  const state = useApi(week ? `campaigns?week=${encodeURIComponent(week)}` : "campaigns");
  const data = state.data;
  return (
    <div>
      <div class="toolbar">
        <input
          type="week"
          name="week"
          aria-label="周"
          value={week}
          onChange={(e) => setWeek(e.currentTarget.value)}
        />
      </div>
      <Status state={state} />
      {data && (
        <>
          <Calendar data={data} />
          {data.campaigns.length > 0 && <Campaigns rows={data.campaigns} />}
          <Segments rows={data.segments} stores={data.store_names} />
        </>
      )}
    </div>
  );
}
